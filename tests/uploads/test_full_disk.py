"""A full media disk (local store) is a storage fault, not a bug: a tus PATCH that fills it
answers 507 with a sentence, never 500, and the upload's offset is what reached the disk, so the
client resumes from there once there is room (issue 22, item 6). On a real, tiny tmpfs (root, or
CAP_SYS_ADMIN); skipped where none can be mounted."""
import os
import shutil
import subprocess

import pytest

from tests.fixtures.object_store import local_files_only
from tests.fixtures.tus_uploads import STREAM, TUS, bearer, id_of, metadata, scratch

pytestmark = local_files_only


@pytest.fixture
def app_config(app_config, tmp_path):
    media = tmp_path / "small-disk"
    media.mkdir()
    mount = shutil.which("mount")
    if mount is None or subprocess.run([mount, "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(media)],
                                       capture_output=True, timeout=30).returncode != 0:
        pytest.skip("no tmpfs can be mounted here")
    app_config["MEDIA_ROOT"] = str(media)
    yield app_config
    subprocess.run(["umount", "-l", str(media)], capture_output=True, timeout=30)


def fill_disk(folder, leave):
    """Write a file into `folder` until only about `leave` bytes are free."""
    free = shutil.disk_usage(folder).free
    with open(os.path.join(folder, "filler"), "wb") as out:
        out.write(b"\0" * max(0, free - leave))


def test_a_tus_patch_filling_the_disk_answers_507_and_keeps_the_offset_consistent(app, client, make_user):
    make_user("staff@example.com", staff=True)
    staff = bearer(client, "staff@example.com")
    length = 512 * 1024  # fits when it is created...
    created = client.post("/api/uploads/", headers={**TUS, **staff, "Upload-Length": str(length),
                                                    "Upload-Metadata": metadata()})
    assert created.status_code == 201, created.get_json()
    location = created.headers["Location"]
    fill_disk(app.config["MEDIA_ROOT"], leave=128 * 1024)  # ...then something else fills the disk

    answer = client.patch(location, data=os.urandom(length), headers={
        **TUS, **staff, "Upload-Offset": "0", "Content-Type": STREAM})

    assert answer.status_code == 507, answer.data[:300]
    assert answer.get_json() == {"detail": "No space left on the media disk."}
    head = client.head(location, headers={**TUS, **staff})
    on_disk = (scratch(app, id_of(location)) / "data").stat().st_size
    assert head.status_code == 200 and int(head.headers["Upload-Offset"]) == on_disk < length
