"""Viewing analytics: what is watched and how well it plays.

This package owns:
- playback sessions (`models.PlaybackSession`): one row per viewer per playback, fed by the
  player's beacons (`beacons.record`), idempotent per (session, sequence number);
- the per-video-day counts they are rolled up into (`models.VideoDay`, `models.VideoDayBucket`) by
  `rollup.run`, a periodic task any worker may run (a claim keeps two from running at once), which
  also deletes sessions older than ANALYTICS_RAW_DAYS;
- the staff statistics read from those counts (`stats`), as JSON (`routes`) and as charts in the
  back office (`admin`);
- the beacon fast path (`fastpath.BeaconFastPath`), the WSGI layer that answers a counted beacon
  without Flask (create_app mounts it).

It may import the accounts (`videoflix.auth`), the video rows (`videoflix.videos.models`), the
watch-position service (`videoflix.videos.catalogue.watch_progress`: a beacon also saves the watch
position), the back office's staff-only views (`videoflix.admin.views`) and the app's plumbing
(extensions, errors, tasks, openapi, validation, logs, prepared statements, the hot-path token
checks of `videoflix.auth.credentials`). Nothing in `videoflix.videos` or `videoflix.auth` imports it:
deleting an account or a video reaches it through the session hook in `rollup`.
"""


def init_app(app):
    from videoflix.analytics import cli, models, routes, tasks  # noqa: F401  (tables, the periodic task)

    app.register_blueprint(routes.bp)
    app.cli.add_command(cli.analytics_group)
