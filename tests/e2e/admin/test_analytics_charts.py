"""The back office's analytics pages in Chromium under the admin's CSP: the charts (uPlot, served
from this server) are drawn and nothing is refused; the numbers shown are the rolled-up ones."""

import pytest

from tests.conftest import PASSWORD
from tests.fixtures.browser import chromium_page
from tests.fixtures.playback import roll_up, watch

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_analytics_pages_draw_their_charts_under_the_csp(app, client, base_url, make_user, login, make_video):
    video_id = make_video(title="Charted")
    make_user("viewer@example.com")
    make_user("staff@example.com", staff=True)
    login("viewer@example.com", PASSWORD)
    watch(client, video_id, [(0, 30)], ttff_ms=500)
    roll_up(app)
    with chromium_page() as page:
        page.goto(f"{base_url}/admin/login/")
        page.fill("input[name=email]", "staff@example.com")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base_url}/admin/**")
        page.goto(f"{base_url}/admin/analytics/")
        page.wait_for_selector("#top-chart[data-drawn] canvas")
        assert page.text_content("#top-table tbody tr td a") == "Charted"
        page.click("#top-table tbody tr td a")
        for chart in ("views-chart", "watch-chart", "retention-chart", "quality-chart"):
            page.wait_for_selector(f"#{chart}[data-drawn] canvas")
        assert "500 ms" in page.text_content("#totals")
        assert page.evaluate("window.__csp") == []
        assert "viewer@example.com" not in page.content()
