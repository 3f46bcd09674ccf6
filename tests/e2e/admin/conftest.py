"""The back office's browser tests share these: the app served by werkzeug in a thread (on a
SQLite file its threads share), for Debian's Chromium."""
import os

import pytest

from tests.fixtures.browser import CHROMIUM, require_tool
from tests.fixtures.live_server import file_database, serve


@pytest.fixture
def app_config(app_config, tmp_path):
    """SQLite becomes a file the server thread shares."""
    file_database(app_config, tmp_path / "admin.sqlite3")
    return app_config


@pytest.fixture
def base_url(app):
    require_tool(os.path.exists(CHROMIUM), "Debian's chromium (/usr/bin/chromium)")
    with serve(app) as url:
        yield url
