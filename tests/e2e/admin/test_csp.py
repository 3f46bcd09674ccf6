"""The back office in Debian's Chromium under its Content-Security-Policy: every page renders
without a single CSP violation, and the inline handlers Flask-Admin needs (the bulk actions, the
row delete confirmation) still run. Nothing is mocked: a werkzeug server thread, a real browser.
"""

import pytest

from tests.conftest import PASSWORD
from tests.fixtures.browser import chromium_page

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_admin_pages_render_without_csp_violations(base_url, make_user, make_video):
    video_id = make_video()
    make_user("staff@example.com", staff=True)
    pages = ["/admin/videos/", "/admin/videos/new/", f"/admin/videos/edit/?id={video_id}",
             f"/admin/videos/details/?id={video_id}", "/admin/users/", "/admin/users/edit/?id=1"]
    with chromium_page() as page:
        console = []
        page.on("console", lambda message: console.append(message.text))
        page.goto(f"{base_url}/admin/login/")
        assert page.evaluate("window.__csp") == []
        page.fill("input[name=email]", "staff@example.com")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base_url}/admin/**")
        for path in pages:
            response = page.goto(base_url + path, wait_until="load")
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
            assert page.evaluate("window.__csp") == [], (path, console)

        # The allowed inline handlers really run: the row delete button asks first, and a bulk
        # action without a selection says so (each a dialog, dismissed: nothing is deleted).
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(f"{base_url}/admin/videos/", wait_until="load")
        page.click("form.delete-form button, button[title='Delete Record']")
        page.click("a.dropdown-toggle:has-text('With selected')")
        page.click("a:has-text('Re-transcode')")
        assert page.evaluate("window.__csp") == [], console
        assert len(dialogs) == 2 and "delete this record" in dialogs[0], dialogs
        assert not [line for line in console if "Content Security Policy" in line], console
