"""The rows of the videos domain and what the database keeps beside them.

    video            Video (one record of a video's state) and its status values
    subtitle         Subtitle (a track of a video)
    watch_progress   WatchProgress (where a user stopped watching a video)
    tus_upload       TusUpload (a resumable upload between its creation and its expiry)
    transcode_chunk  TranscodeChunk (a part of a chunked transcode, taken by any worker)
    fulltext         the full-text index of titles and descriptions (FTS5 / tsvector)
    category_counts  CategoryCount, the ready videos per category, kept by triggers

Rows change through the jobs' state machine (videoflix.videos.jobs.state) and the services; the
models import only the storage package below them (a deleted video's files go with its row).
The rows are named here so that `from videoflix.videos.models import Video` reads as what it is.
"""
from videoflix.videos.models.category_counts import CategoryCount
from videoflix.videos.models.subtitle import Subtitle
from videoflix.videos.models.transcode_chunk import TranscodeChunk
from videoflix.videos.models.tus_upload import DONE, UPLOADING, TusUpload
from videoflix.videos.models.video import FAILED, PENDING, PROCESSING, READY, Video
from videoflix.videos.models.watch_progress import WatchProgress

__all__ = ["CategoryCount", "DONE", "FAILED", "PENDING", "PROCESSING", "READY", "Subtitle", "TranscodeChunk",
           "TusUpload", "UPLOADING", "Video", "WatchProgress"]
