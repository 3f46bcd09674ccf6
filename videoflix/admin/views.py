"""The back office's views: sign-in/out, users, videos. Every page but sign-in is for staff only:
anonymous visitors are sent to the sign-in page, signed-in non-staff get a 403."""
import logging
from datetime import timedelta

from flask import Response, abort, current_app, flash, g, make_response, redirect, request, url_for
from flask_admin import AdminIndexView, BaseView, expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_admin.form import SecureForm
from markupsafe import Markup
from sqlalchemy import select
from wtforms import FileField, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, ValidationError

from videoflix.admin import auth
from videoflix.auth import sessions
from videoflix.auth.models import User
from videoflix.extensions import db
from videoflix.ratelimit import login_limits
from videoflix.videos.jobs import state
from videoflix.videos.jobs.chunk_display import chunk_view
from videoflix.videos.models import Video
from videoflix.videos.storage.backends import NotStored, StorageUnavailable
from videoflix.videos.storage.keys import read_hls
from videoflix.videos.tasks import request_transcode, transcode_new_video
from videoflix.videos.uploads.service import UploadRefused, UploadTooLarge, accept, field_error, max_upload_bytes

log = logging.getLogger(__name__)
UPLOAD_FORM_OVERHEAD = 1024 * 1024  # multipart headers and the text fields around the file
UPLOAD_CSRF_TIME_LIMIT = timedelta(hours=12)  # a form opened, then a slow multi-GB upload


class StaffOnly:
    """Mixin for Flask-Admin views: staff only."""

    def is_accessible(self):
        user = auth.current_admin_user()
        return user is not None and user.is_staff

    def admin_user(self):
        return auth.current_admin_user()

    def signout_form(self):
        return SecureForm()

    def inaccessible_callback(self, name, **kwargs):
        if auth.current_admin_user() is None:
            return redirect(url_for("admin_login.index", next=request.full_path.rstrip("?")))
        abort(403)


class HomeView(StaffOnly, AdminIndexView):
    @expose("/")
    def index(self):
        return redirect(url_for("admin_videos.index_view"))


class LoginForm(SecureForm):
    email = StringField("E-mail", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


class LoginView(BaseView):
    """/admin/login/: e-mail and password of a staff account; sets the API's session cookies.

    Its POST shares the API login's limits and counters (a 429 past them), so this door gives no
    extra guesses; a non-staff account is refused (403) after its password was checked, which a
    failed-attempt limit makes as costly to probe as the API login.
    """

    def is_visible(self):
        return False

    @expose("/", methods=("GET", "POST"))
    @login_limits(methods=["POST"])
    def index(self):
        form = LoginForm(request.form)
        target = auth.safe_next(request.args.get("next"), url_for("admin.index"))
        status = 200
        if request.method == "POST":
            if not form.validate():
                status = 400
            else:
                try:
                    access, refresh = auth.sign_in(form.email.data, form.password.data)
                except auth.SignInRefused as error:
                    flash(str(error), "error")
                    status = error.status
                else:
                    response = redirect(target)
                    sessions.set_cookies(response, access, refresh)
                    return response
        return self.render("admin/login.html", form=form), status


class LogoutView(BaseView):
    """/admin/logout/ (POST with the CSRF token): ends the session and deletes the cookies."""

    def is_visible(self):
        return False

    @expose("/", methods=("POST",))
    def index(self):
        form = SecureForm(request.form)
        if not form.validate():
            abort(400)
        return auth.sign_out(redirect(url_for("admin_login.index")))


class StaffModelView(StaffOnly, ModelView):
    form_base_class = SecureForm
    page_size = 50


class FileCreateView(StaffModelView):
    """A model view whose create form takes a file: the create route alone accepts a body of
    create_body_limit() bytes (the rest of the app keeps the small limit), and a file refused by
    create_model (refuse_create) shows the form again with the reason, as a 400 (or the status
    given: 503 when the store failed), not a 200."""

    def create_body_limit(self):
        raise NotImplementedError

    def refuse_create(self, message, status=400):
        g.videoflix_create_refused = status
        flash(message, "error")

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        request.max_content_length = self.create_body_limit()
        response = super().create_view()
        if g.get("videoflix_create_refused"):
            response = make_response(response, g.videoflix_create_refused)
        return response


class UserView(StaffModelView):
    """Accounts: search, activate/deactivate, staff flag. Deactivating ends all the user's sessions."""

    can_create = False
    can_delete = False
    column_list = ["email", "is_active", "is_staff", "created_at", "last_login"]
    column_searchable_list = ["email"]
    column_filters = ["is_active", "is_staff"]
    column_default_sort = ("created_at", True)
    form_columns = ["is_active", "is_staff"]

    def on_model_change(self, form, model, is_created):
        me = auth.current_admin_user()
        if model.id == me.id and not (model.is_active and model.is_staff):
            raise ValidationError("You cannot deactivate yourself or remove your own staff flag.")

    def after_model_change(self, form, model, is_created):
        if not model.is_active:
            sessions.end_all_sessions(model)

    def _set(self, ids, **values):
        me = auth.current_admin_user()
        users = db.session.execute(select(User).where(User.id.in_([int(i) for i in ids]))).scalars().all()
        changed = 0
        for user in users:
            if user.id == me.id and not all(values.values()):
                flash("You cannot deactivate yourself or remove your own staff flag.", "error")
                continue
            for key, value in values.items():
                setattr(user, key, value)
            changed += 1
        db.session.commit()
        for user in users:
            if not user.is_active:
                sessions.end_all_sessions(user)  # revoke_all_for_user + every refresh token
        flash(f"{changed} user(s) updated.", "success")

    @action("activate", "Activate")
    def action_activate(self, ids):
        self._set(ids, is_active=True)

    @action("deactivate", "Deactivate (ends their sessions)", "Deactivate the selected users?")
    def action_deactivate(self, ids):
        self._set(ids, is_active=False)

    @action("make_staff", "Give staff access")
    def action_make_staff(self, ids):
        self._set(ids, is_staff=True)

    @action("remove_staff", "Remove staff access")
    def action_remove_staff(self, ids):
        self._set(ids, is_staff=False)


def upload_rule(name):
    """A WTForms validator applying the upload service's rule for the field `name`."""

    def check(form, field):
        error = field_error(name, field.data)
        if error:
            raise ValidationError(error)

    return check


class UploadForm(SecureForm):
    class Meta:
        # The token is checked only after the whole file has arrived, which for a large upload
        # takes far longer than WTForms' default 30 minutes.
        csrf_time_limit = UPLOAD_CSRF_TIME_LIMIT

    title = StringField("Title", validators=[upload_rule("title")])
    description = TextAreaField("Description", validators=[upload_rule("description")])
    category = StringField("Category", validators=[upload_rule("category")],
                           description='A display string such as "Drama".')
    file = FileField("Video file", description="Any format ffmpeg can decode; it is checked before it is kept.")


def _thumbnail(view, context, model, name):
    if not model.thumbnail:
        return ""
    src = url_for(".thumbnail", video_id=model.id)
    return Markup('<img src="{}" alt="" style="height:54px">').format(src)


def _duration(view, context, model, name):
    if model.duration is None:
        return ""
    seconds = int(round(model.duration))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _chunks(view, context, model, name):
    """A chunked transcode: chunks done of all, and the worker of each running chunk."""
    chunks = chunk_view(model)
    if chunks is None:
        return ""
    items = Markup("").join(Markup("<li>{}: {}</li>").format(chunk, worker) for chunk, worker in chunks.running)
    running = Markup('<ul class="list-unstyled small mb-0">{}</ul>').format(items) if chunks.running else ""
    return Markup('<span class="chunks-done">{}</span>{}').format(chunks.headline, running)


class VideoView(FileCreateView):
    """Videos: upload (title, description, category, file), status and progress, re-transcode, delete."""

    list_template = "admin/video_list.html"
    can_view_details = True
    column_list = ["thumbnail", "title", "category", "status", "progress", "job", "chunks", "duration", "renditions",
                   "created_at", "error"]
    column_labels = {"job": "Job", "progress": "Progress %", "chunks": "Chunks"}
    column_formatters = {
        "thumbnail": _thumbnail,
        "duration": _duration,
        "renditions": lambda v, c, m, n: ", ".join(m.resolutions),
        "job": lambda v, c, m, n: state.job_label(m),
        "chunks": _chunks,
    }
    column_searchable_list = ["title", "category"]
    column_filters = ["status", "category"]
    column_default_sort = ("created_at", True)
    form_columns = ["title", "description", "category"]
    form_args = {
        "title": {"validators": [upload_rule("title")]},
        "description": {"validators": [upload_rule("description")]},
        "category": {"validators": [upload_rule("category")]},
    }

    def get_create_form(self):
        return UploadForm

    def create_body_limit(self):
        return max_upload_bytes() + UPLOAD_FORM_OVERHEAD

    def create_model(self, form):
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash("Choose a video file to upload.", "error")
            return False
        try:
            video = accept(
                upload.stream, filename=upload.filename, title=form.title.data,
                description=form.description.data, category=form.category.data,
            )
        except UploadTooLarge:
            abort(413)
        except UploadRefused as error:
            self.refuse_create(f"The upload was refused: {error}")
            return False
        except StorageUnavailable as error:  # nothing was kept; the form is shown again
            self.refuse_create(f"The upload was not stored: {error}", 507 if error.full else 503)
            return False
        finally:
            upload.close()
        error = transcode_new_video(video)
        if error is not None:
            flash(f"Video {video.id} was stored, but its transcode could not be queued ({error}). Use "
                  f"Re-transcode (or flask transcode {video.id}) once the queue is reachable again.", "error")
        return video

    @expose("/thumbnail/<id:video_id>")
    def thumbnail(self, video_id):
        video = db.get_or_404(Video, video_id)
        if not video.thumbnail:
            abort(404)
        try:
            jpeg = read_hls(video.thumbnail)
        except NotStored:
            abort(404)
        return Response(jpeg, mimetype="image/jpeg", headers={"Cache-Control": "no-cache"})

    @action("retranscode", "Re-transcode", "Transcode the selected videos again? They keep playing meanwhile.")
    def action_retranscode(self, ids):
        queued = 0
        for video_id in ids:
            video = db.session.get(Video, int(video_id))
            if video is None:
                continue
            try:
                request_transcode(video)
                queued += 1
            except state.StateError as error:
                flash(str(error), "error")
        flash(f"{queued} video(s) queued for transcoding.", "success")

    def get_save_return_url(self, model, is_created=False):
        return self.get_url(".index_view")

    @property
    def max_upload_mb(self):
        return current_app.config["MAX_UPLOAD_MB"]
