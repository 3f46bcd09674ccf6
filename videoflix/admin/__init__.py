"""The Flask-Admin back office at /admin/, for staff only (see views.py and auth.py)."""


def init_app(app):
    """Build the Admin for this app. Created here, never at import, so each create_app() gets
    its own (Flask-Admin binds views to one app)."""
    from flask_admin import Admin
    from flask_admin.theme import Bootstrap4Theme

    from videoflix.admin import auth, csp, subtitles, uploads, views
    from videoflix.analytics.admin import AnalyticsView
    from videoflix.auth.models import User
    from videoflix.extensions import db
    from videoflix.videos.models import Subtitle, Video

    admin = Admin(
        name="Videoflix",
        url="/admin",
        index_view=views.HomeView(url="/admin"),
        theme=Bootstrap4Theme(base_template="admin/videoflix_base.html"),
        csp_nonce_generator=csp.csp_nonce,
    )
    admin.add_view(views.VideoView(Video, db, name="Videos", endpoint="admin_videos", url="videos"))
    admin.add_view(uploads.ResumableUploadView(name="Upload", endpoint="admin_upload", url="videos/upload"))
    admin.add_view(subtitles.SubtitleView(Subtitle, db, name="Subtitles", endpoint="admin_subtitles", url="subtitles"))
    admin.add_view(views.UserView(User, db, name="Users", endpoint="admin_users", url="users"))
    admin.add_view(AnalyticsView(name="Analytics", endpoint="admin_analytics", url="analytics"))
    admin.add_view(views.LoginView(name="Sign in", endpoint="admin_login", url="login"))
    admin.add_view(views.LogoutView(name="Sign out", endpoint="admin_logout", url="logout"))
    admin.init_app(app)
    app.extensions["videoflix_admin"] = admin
    app.after_request(auth.set_rotated_cookies)
    csp.init_app(app, admin)
