"""/admin/videos/upload/: resumable uploads from the browser (tus-js-client against /api/uploads/).

The page is a form and a progress bar; videoflix/static/admin/tus-upload.js does the uploading (no
inline script: the admin's CSP). tus-js-client comes from npm (player/package.json, pinned) and is
served as /static/vendor/tus.min.js (`make player-deps` copies it there). The single-request form
(/admin/videos/new/) stays as the fallback, also for a browser without tus-js-client.
"""
from flask import current_app, url_for
from flask_admin import BaseView, expose

from videoflix.admin.views import StaffOnly, UploadForm
from videoflix.videos.uploads import tus

CHUNK_SIZE = 8 * 1024 * 1024  # fits nginx's 64 MB per request at /api/uploads/ (deploy/nginx)


class ResumableUploadView(StaffOnly, BaseView):
    """The back office's upload page (a menu entry next to Videos)."""

    chunk_size = CHUNK_SIZE

    @expose("/")
    def index(self):
        return self.render(
            "admin/tus_upload.html", form=UploadForm(), endpoint=url_for("tus.create"),
            chunk_size=self.chunk_size, max_size=tus.max_size(), max_upload_mb=current_app.config["MAX_UPLOAD_MB"],
            fallback=url_for("admin_videos.create_view"), list_url=url_for("admin_videos.index_view"),
        )
