"""Videos: uploads, transcoding to HLS, and streaming."""


def init_app(app):
    # models: register the table; tasks: register the Huey task and the worker-start recovery.
    from videoflix.videos import cli, models, routes, storage_cli, tasks, tus_routes, viewing  # noqa: F401

    app.register_blueprint(routes.bp)
    app.register_blueprint(viewing.bp)
    tus_routes.init_app(app)
    app.cli.add_command(cli.add_video_command)
    app.cli.add_command(cli.transcode_command)
    app.cli.add_command(cli.add_subtitle_command)
    storage_cli.init_app(app)
