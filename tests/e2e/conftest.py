"""The browser tests here use the player's fixtures (a real API server, the player's own origin,
Chromium logged in, a transcoded clip)."""
from tests.e2e.test_player import (  # noqa: F401
    api_base,
    app_config,
    browser,
    browser_tools,
    hls_js,
    logged_in,
    player_origin,
    ready_video,
    source_clip,
)
