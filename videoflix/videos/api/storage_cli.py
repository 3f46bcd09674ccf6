"""`flask storage init|check|migrate`: the operator's commands for the media store (API.md,
"Object storage")."""
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import click
from botocore.exceptions import ClientError
from flask import current_app
from flask.cli import AppGroup

from videoflix.extensions import db
from videoflix.videos.models import Video
from videoflix.videos.storage.backends import NotStored, round_trip
from videoflix.videos.storage.keys import hls_key, media_store, source_key
from videoflix.videos.storage.local import LocalStore
from videoflix.videos.storage.s3 import S3Store
from videoflix.videos.uploads import migration
from videoflix.videos.uploads.chunks import chunk_store

storage_cli = AppGroup("storage", help="Set up, check and migrate the media store.")


def bucket_store():
    """The bucket the S3_* settings name (whatever MEDIA_STORAGE says)."""
    return S3Store.from_config(current_app.config)


def anonymous_status(store, key):
    """The HTTP status of an unsigned GET of `key` (403 expected: the bucket is private)."""
    url = store.client.generate_presigned_url("get_object", Params={"Bucket": store.bucket, "Key": store.key(key)})
    try:
        with urllib.request.urlopen(url.split("?", 1)[0], timeout=15) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


@storage_cli.command("init")
def init_command():
    """Create the bucket when missing, allow the CORS origins to GET objects (presigned segment
    URLs in signed mode), and check that an anonymous read is refused."""
    store = bucket_store()
    # An operator's command waits as long as a whole-file transfer, not a viewer's request: a
    # bucket that has just started can take more than a second to answer its first requests.
    client = store.transfer_client
    try:
        client.head_bucket(Bucket=store.bucket)
        click.echo(f"Bucket {store.bucket} exists.")
    except ClientError:
        client.create_bucket(Bucket=store.bucket)
        click.echo(f"Bucket {store.bucket} created.")
    origins = current_app.config["CORS_ORIGINS"]
    try:
        client.put_bucket_cors(Bucket=store.bucket, CORSConfiguration={"CORSRules": [{
            "AllowedOrigins": origins, "AllowedMethods": ["GET", "HEAD"], "AllowedHeaders": ["*"],
            "ExposeHeaders": ["Content-Length", "Content-Range", "ETag"], "MaxAgeSeconds": 3600}]})
        click.echo(f"CORS: GET and HEAD allowed from {', '.join(origins)}.")
    except ClientError as error:
        click.echo(f"CORS not set ({error.response['Error'].get('Code')}): set it on the store yourself.", err=True)
    key = "health/anonymous-probe"
    client.put_object(Bucket=store.bucket, Key=store.key(key), Body=b"private")
    try:
        status = anonymous_status(store, key)
    finally:
        client.delete_object(Bucket=store.bucket, Key=store.key(key))
    if status < 400:
        raise click.ClickException(f"An anonymous GET was answered {status}: make the bucket private.")
    click.echo(f"Anonymous reads are refused ({status}).")


@storage_cli.command("check")
def check_command():
    """Write, read back and delete an object in the media store (as /api/health/ does)."""
    store = media_store()
    try:
        round_trip(store)
    except Exception as error:  # noqa: BLE001 - any failure is the answer
        raise click.ClickException(f"Storage check failed: {type(error).__name__}: {error}") from None
    click.echo(f"{current_app.config['MEDIA_STORAGE']}: write/read/delete round trip ok.")


def media_keys(store, video):
    """The keys a video needs: its original and every file of its current version."""
    found = [source_key(video.source_file)] if video.source_file else []
    if video.hls_dir:
        found += store.list(hls_key(video.hls_dir))
    return found


def copy_verified(source, target, key, scratch):
    """Copy one object unless the target already has it (same size and SHA-256: a resumed run
    skips it); verify the copy the same way. True when copied; ClickException when they differ."""
    wanted = source.stat(key)
    checksum = source.checksum(key)
    try:
        if target.stat(key).size == wanted.size and target.checksum(key) == checksum:
            return False
    except NotStored:
        pass
    if source.local:
        target.put_file(key, source.stat(key).path)
    else:
        local = Path(scratch) / "object"
        source.fetch(key, local)
        target.put_file(key, local, move=True)
    if target.stat(key).size != wanted.size or target.checksum(key) != checksum:
        raise click.ClickException(f"{key}: the copy differs from the original")
    return True


@storage_cli.command("migrate")
@click.option("--to", "to", type=click.Choice(["s3"]), help="Copy local media (MEDIA_ROOT) into the bucket.")
@click.option("--from", "from_", type=click.Choice(["s3"]), help="Copy media from the bucket into MEDIA_ROOT.")
def migrate_command(to, from_):
    """Copy every video's original and current version between MEDIA_ROOT and the bucket,
    verifying sizes and SHA-256 checksums, and every unfinished upload (so its client resumes
    where it was); resumable (what is already there is skipped). The keys are the same in both
    stores, so the rows stay as they are: switch MEDIA_STORAGE after the run, then run it once
    more: it copies what arrived meanwhile and removes the old store's unfinished uploads."""
    if bool(to) == bool(from_):
        raise click.UsageError("Give --to s3 or --from s3.")
    local, bucket = LocalStore(current_app.config["MEDIA_ROOT"]), bucket_store()
    source, target = (local, bucket) if to else (bucket, local)
    switched = current_app.config["MEDIA_STORAGE"] == ("s3" if to else "local")
    videos = db.session.execute(db.select(Video).order_by(Video.id)).scalars().all()
    copied = skipped = 0
    with tempfile.TemporaryDirectory(prefix="videoflix-migrate-") as scratch:
        for video in videos:
            for key in media_keys(source, video):
                if copy_verified(source, target, key, scratch):
                    copied += 1
                else:
                    skipped += 1
            click.echo(f"Video {video.id}: done.")
    click.echo(f"{len(videos)} videos: {copied} files copied and verified, {skipped} already there.")
    _carry_over_uploads(source, target, switched)
    if not switched:
        click.echo(f"Now set MEDIA_STORAGE={'s3' if to else 'local'}, restart, and run this once more.")


def _carry_over_uploads(source, target, switched):
    """Unfinished uploads into the target store (uploads.migration); once the target is the live
    store (`switched`), the source's copies go."""
    config = current_app.config
    try:
        done = migration.carry_over(chunk_store(config, source), chunk_store(config, target), remove_old=switched)
    except migration.CopyDiffers as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Unfinished uploads: {len(done.copied)} copied and verified, {len(done.present)} already there.")
    if done.busy:
        click.echo(f"{len(done.busy)} being written to right now ({', '.join(done.busy)}): run this again.", err=True)
    if done.removed_old:
        click.echo("The old store's unfinished uploads were removed (MEDIA_STORAGE names the new one).")


def init_app(app):
    app.cli.add_command(storage_cli)
