"""The back office's subtitle tracks: staff add a track to a video (a .vtt or .srt file) or delete
one; both go through videoflix.videos.jobs.subtitle_tracks, as `flask add-subtitle` does."""
from flask import request
from flask_admin.form import SecureForm
from wtforms import FileField, IntegerField, StringField
from wtforms.validators import DataRequired, InputRequired

from videoflix.admin.views import FileCreateView
from videoflix.extensions import db
from videoflix.videos.jobs import subtitle_tracks
from videoflix.videos.media import webvtt
from videoflix.videos.models import Video

FORM_OVERHEAD = 64 * 1024  # multipart headers and the text fields around the file


class SubtitleForm(SecureForm):
    video_id = IntegerField("Video ID", validators=[InputRequired()],
                            description="The video's number (see its details in the Videos list).")
    language = StringField("Language", validators=[DataRequired()],
                           description='A BCP 47 code such as "de" or "pt-BR"; one track per language.')
    label = StringField("Label", validators=[DataRequired()], description='Shown in the player, e.g. "Deutsch".')
    file = FileField("Subtitle file", description="WebVTT (.vtt) or SubRip (.srt), UTF-8; SRT is converted.")


class SubtitleView(FileCreateView):
    """Subtitle tracks: add, list, delete. Adding or deleting rewrites the video's published
    playlists at once; nothing is re-transcoded."""

    can_edit = False
    column_list = ["video_id", "video", "language", "label", "created_at"]
    column_labels = {"video_id": "Video ID"}
    column_formatters = {"video": lambda v, c, m, n: m.video.title}
    column_searchable_list = ["language", "label"]
    column_default_sort = ("created_at", True)

    def get_create_form(self):
        return SubtitleForm

    def create_body_limit(self):
        return webvtt.MAX_BYTES + FORM_OVERHEAD

    def create_model(self, form):
        upload = request.files.get("file")
        try:
            video = db.session.get(Video, form.video_id.data)
            if video is None:
                raise subtitle_tracks.SubtitleRefused("video_id", f"There is no video {form.video_id.data}.")
            if upload is None or not upload.filename:
                raise subtitle_tracks.SubtitleRefused("file", "Choose a .vtt or .srt file.")
            return subtitle_tracks.add(video, upload.stream.read(webvtt.MAX_BYTES + 1),
                                 language=form.language.data, label=form.label.data)
        except subtitle_tracks.SubtitleRefused as error:
            db.session.rollback()
            self.refuse_create(f"The subtitle track was refused: {error}")
            return False
        finally:
            if upload is not None:
                upload.close()

    def delete_model(self, model):
        subtitle_tracks.remove(model)
        return True

    def get_save_return_url(self, model, is_created=False):
        return self.get_url(".index_view")
