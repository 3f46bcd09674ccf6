"""Videos: uploads, transcoding to HLS, and streaming."""


def init_app(app):
    from videoflix.videos import models, routes  # noqa: F401 (models: register the table)

    app.register_blueprint(routes.bp)
