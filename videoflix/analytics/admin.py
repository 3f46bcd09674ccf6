"""The back office's analytics pages (staff only): the catalogue (most watched, worst playing)
and one video's charts. Counts only, never a viewer.

The charts are drawn by uPlot (npm, pinned in player/package.json; `make player-deps` copies it to
videoflix/static/vendor/) and videoflix/static/admin/analytics.js, from the statistics embedded as
a JSON data block: no inline script, as the admin's CSP wants.
"""
from flask import abort, request, url_for
from flask_admin import BaseView, expose
from marshmallow import ValidationError

from videoflix.admin.views import StaffOnly
from videoflix.analytics import stats
from videoflix.analytics.schemas import catalogue_query_schema, range_query_schema, video_stats_schema
from videoflix.extensions import db
from videoflix.videos.models import Video


def _range(schema):
    try:
        return schema.load(request.args)
    except ValidationError:
        return schema.load({})  # a bad range in the address bar: the default one


class AnalyticsView(StaffOnly, BaseView):
    @expose("/")
    def index(self):
        query = _range(catalogue_query_schema)
        body = stats.catalogue_stats(query["start"], query["end"], query["limit"])
        return self.render("admin/analytics.html", stats=body, start=query["start"], end=query["end"],
                           video_url=lambda video_id: url_for(".video", video_id=video_id, **{
                               "from": query["start"].isoformat(), "to": query["end"].isoformat()}))

    @expose("/video/<id:video_id>/")
    def video(self, video_id):
        video = db.session.get(Video, video_id)
        if video is None:
            abort(404)
        query = _range(range_query_schema)
        body = video_stats_schema.dump(stats.video_stats(video, query["start"], query["end"]))
        return self.render("admin/analytics_video.html", stats=body, video=video, start=query["start"],
                           end=query["end"])
