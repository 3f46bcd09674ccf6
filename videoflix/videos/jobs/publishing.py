"""Publishing a chunked job's parts: after each part is stored, the parts stored from the first on
(without a hole) are listed in the version's playlists.

- While parts are missing, and only for a first version with PUBLISH=playable, the version
  grows: its playlists are EVENT playlists, the row names it (`growing`: listed and served,
  shown as processing) as soon as the first part of every rendition is stored.
- When the last part is stored, the playlists become VOD with measured bandwidths, the video's
  subtitle tracks are added, and the row switches to the finished version in one commit (a
  re-transcode's old version served until then, and removed after).

Whoever publishes holds the video's row lock (part_state.lock_video) from reading the parts'
rows to its commit, so two workers finishing parts at once publish one after the other, and the
later one lists both: a playlist never loses a segment it listed, nor lists one twice.
"""
import logging
import shutil
import uuid

from flask import current_app

from videoflix.extensions import db
from videoflix.videos.jobs import part_state, state, subtitle_tracks
from videoflix.videos.media import chunks, layout
from videoflix.videos.media.assemble import assemble
from videoflix.videos.media.parts import PartResult
from videoflix.videos.media.plan import Rendition
from videoflix.videos.media.probe import SourceInfo
from videoflix.videos.models import Video
from videoflix.videos.models.transcode_chunk import AUDIO, DONE
from videoflix.videos.models.video import videos_committed
from videoflix.videos.storage.keys import put_version_text, remove_job, remove_other_versions, work_path

log = logging.getLogger(__name__)
THUMBNAIL = layout.THUMBNAIL
# The master last: it names the media playlists, which must be there first.
_ORDER = {layout.MASTER: 1}


def publish_parts(video_id, job):
    """List the stored parts of the video's job `job` (see the module's docstring). Returns
    "ready" when the version is finished, "growing" when it was published so far, else None."""
    try:
        part_state.lock_video(video_id)
        video = db.session.get(Video, video_id, populate_existing=True)
        if video is None or video.claimed_by != state.chunked_token(job) or (video.job_plan or {}).get("job") != job:
            db.session.rollback()
            return None
        data = video.job_plan
        info = SourceInfo.from_dict(data["info"], video.source_file or "")
        cplan = chunks.ChunkPlan.from_dict(data["plan"])
        renditions = [Rendition(**r) for r in data["renditions"]]
        results = _stored_prefix(video_id, job)
        complete = len(results) == len(cplan.chunks)
        if not results or not (complete or data.get("progressive")):
            db.session.rollback()
            return None
        hls_dir = f"{int(video_id)}/{job}"
        assembly = assemble(info, cplan, renditions, results, job)
        _write(hls_dir, assembly.files)
        subtitle_tracks.publish_tracks(video_id, hls_dir)
        columns = dict(renditions=assembly.renditions, thumbnail=f"{hls_dir}/{THUMBNAIL}", duration=info.duration,
                       width=info.width, height=info.height,
                       storyboard=f"{hls_dir}/{layout.STORYBOARD_VTT}" if layout.STORYBOARD_VTT in assembly.files
                       else None)
        if not complete:
            state.publish_growing(video_id, state.chunked_token(job), hls_dir, **columns)
            _changed(video_id)
            return "growing"
        state.succeed(video_id, state.chunked_token(job), hls_dir, **columns)
        _changed(video_id)
    except state.ClaimLost:
        db.session.rollback()
        return None
    except BaseException:
        db.session.rollback()
        raise
    remove_other_versions(hls_dir)
    remove_job(video_id, job)
    log.info("Video %s ready: %s (%d parts)", video_id, hls_dir, len(results))
    return "ready"


def _changed(video_id):
    """Tell this process's caches (the playable index) at once; other processes wait for their TTL."""
    videos_committed.send(current_app._get_current_object(), video_ids=frozenset({video_id}))


def _stored_prefix(video_id, job):
    """The results of the parts done from the first on, up to the first one not done."""
    results = []
    for row in part_state.part_rows(video_id, job):
        if row.number == AUDIO:
            continue
        if row.status != DONE or row.number != len(results):
            break
        results.append(PartResult.from_dict(row.result))
    return results


def _write(hls_dir, files):
    """Replace the version's text files, the master last."""
    scratch = work_path(f"publish-{uuid.uuid4().hex}")
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        for name in sorted(files, key=lambda n: (_ORDER.get(n, 0), n)):
            put_version_text(hls_dir, name, files[name], scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
