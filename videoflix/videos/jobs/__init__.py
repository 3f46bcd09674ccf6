"""The jobs that move a video through its life, and the one state machine they all go through.

    state                  every transition of a video's row (queue, claim, progress, succeed, fail ...)
    transcoding            the transcode job: claim, run the media pipeline, publish, switch the row
    storyboard_backfill    storyboards for versions published before transcodes made them
    subtitle_tracks        subtitle tracks: accept one, and keep a version's files in step with them

A job is plain work on a video id: it never enqueues (videoflix.videos.tasks does). It may import
the media library, the models and the storage package; nothing above them (no route, no upload).
`make lint` checks that.
"""
