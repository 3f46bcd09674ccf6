"""The back office's Content-Security-Policy: its pages are never framed, and run only scripts and
styles this server sends, so an injected tag or attribute does nothing.

Flask-Admin's own templates still carry a few inline event handlers (the bulk actions' links, the
row delete button's confirmation, the filter links), `javascript:void(0)` links (dropdown toggles)
and our thumbnail column one style attribute.
Their exact texts are known from the views at start-up, so the policy allows precisely those
(CSP hashes with 'unsafe-hashes'), never inline code in general; Flask-Admin's inline <script>
blocks get a per-response nonce (Admin(csp_nonce_generator=...)).
"""
import base64
import hashlib
import secrets

from flask import g, request
from flask_admin.babel import gettext

from videoflix.auth.credentials import admin_page_headers

# views.thumbnail_cell's <img>.
STYLE_ATTRIBUTES = ("height:54px",)
# Flask-Admin's templates (bootstrap4: model/layout.html's filter links; the dropdown toggles'
# hrefs, whose navigation browsers check against the same hashes).
FIXED_HANDLERS = ("return false;", "javascript:void(0)")


def csp_nonce():
    """One nonce per response, for Flask-Admin's inline scripts and the policy that allows them."""
    if "admin_csp_nonce" not in g:
        g.admin_csp_nonce = secrets.token_urlsafe(16)
    return g.admin_csp_nonce


def source_hash(text):
    """The CSP source expression allowing exactly `text` as inline code."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def inline_handlers(admin):
    """The texts of every inline event handler (and javascript: URL) the admin's views render."""
    handlers = set(FIXED_HANDLERS)
    handlers.add(f"return faHelpers.safeConfirm('{gettext('Are you sure you want to delete this record?')}');")
    for view in admin._views:
        for name, _text in getattr(view, "_actions", ()):
            handlers.add(f"return modelActions.execute('{name}');")
    return sorted(handlers)


def init_app(app, admin):
    """Every answer under the admin's URL gets X-Frame-Options and the policy."""
    script_hashes = [source_hash(text) for text in inline_handlers(admin)]
    style_hashes = [source_hash(text) for text in STYLE_ATTRIBUTES]
    prefix = admin.url.rstrip("/") + "/"

    def add_admin_page_headers(response):
        if request.path.startswith(prefix) or request.path == admin.url:
            for name, value in admin_page_headers(csp_nonce(), script_hashes, style_hashes):
                response.headers[name] = value
        return response

    app.after_request(add_admin_page_headers)
