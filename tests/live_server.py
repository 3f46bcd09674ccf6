"""The app served by werkzeug in a thread, for tests that talk to it over real sockets (a browser,
tuspy, raw connections)."""
import threading
from contextlib import contextmanager

from werkzeug.serving import make_server


def file_database(app_config, path):
    """SQLite becomes a file, which the server's threads share (in-memory SQLite is per connection)."""
    if app_config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app_config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{path}"
    return app_config


@contextmanager
def serve(app):
    """Yields the base URL of `app` served on a free loopback port; stops the server afterwards."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
