"""The back office's video list shows a chunked transcode: chunks done of all (the audio encode is
one), and which worker holds each running chunk, from the TranscodeChunk rows."""
import re

import pytest

from tests.fixtures.chunk_rows import AUDIO, DONE, QUEUED, RUNNING, WEB1, WEB2, set_chunks
from tests.fixtures.videos import sign_in_staff
from videoflix.extensions import db
from videoflix.videos.models import PENDING, READY, Video


@pytest.fixture
def staff(make_user, client):
    return sign_in_staff(make_user, client)


def add_video(app, title, **columns):
    with app.app_context():
        video = Video(title=title, description="", category="Drama", **columns)
        db.session.add(video)
        db.session.commit()
        return video.id


def chunks_cell(html, title):
    """The text of the Chunks cell in the row of the video titled `title` (tags dropped)."""
    row = next(r for r in re.findall(r"<tr.*?</tr>", html, re.S) if f">{title}<" in r or f"{title}\n" in r)
    cell = re.search(r'<td class="col-chunks">(.*?)</td>', row, re.S)
    assert cell, row
    return " ".join(re.sub(r"<[^>]+>", " ", cell.group(1)).split())


def test_the_video_list_shows_chunks_done_and_the_worker_of_each_running_chunk(app, client, staff):
    growing = add_video(app, "Growing film", status=PENDING)
    set_chunks(app, growing, [(AUDIO, DONE, None), (0, DONE, None), (1, RUNNING, WEB1), (2, RUNNING, WEB2),
                              (3, QUEUED, None)])
    add_video(app, "Finished film", status=READY, progress=100)

    page = client.get("/admin/videos/")

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert chunks_cell(html, "Growing film") == ("2/5 chunks done chunk 1: web1~4026531836:4242 "
                                                 "chunk 2: web2~4026531836:77")
    assert chunks_cell(html, "Finished film") == ""
    # Each running chunk is an item of its own; the claims' tokens are not shown.
    assert "<li>chunk 1: web1~4026531836:4242</li>" in html and "c0ffee00c0ffee00-1" not in html
    assert '<meta http-equiv="refresh" content="5">' in html  # and it moves while the job runs

    # The audio runs on one worker, the last chunk on another.
    set_chunks(app, growing, [(AUDIO, RUNNING, WEB2), (0, DONE, None), (1, DONE, None), (2, DONE, None),
                              (3, RUNNING, WEB1)])
    html = client.get("/admin/videos/").get_data(as_text=True)
    assert chunks_cell(html, "Growing film") == ("3/5 chunks done audio: web2~4026531836:77 "
                                                 "chunk 3: web1~4026531836:4242")


def test_a_worker_name_is_text_not_markup(app, client, staff):
    video_id = add_video(app, "Odd host", status=PENDING)
    set_chunks(app, video_id, [(0, RUNNING, "<b>x</b>:12:c0ffee00c0ffee00-0")])

    html = client.get("/admin/videos/").get_data(as_text=True)

    assert "<li>chunk 0: &lt;b&gt;x&lt;/b&gt;:12</li>" in html and "<b>x</b>" not in html
