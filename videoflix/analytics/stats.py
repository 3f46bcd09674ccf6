"""Staff statistics, read from the rolled-up counts only (so never a viewer's identity).

Per video and day: sessions, views (rollup.is_view), unique viewers (accounts with a view that
day), watch time, average percent watched (per view, watched / duration, at most 100 %), the
retention curve (share of views that passed each 5 % of the duration), the median time to first
frame (rollup.ttff_bin: 10 ms bins below 1 s) and the rebuffering ratio (seconds stalled /
(watched + stalled)). The same over
a date range, where unique viewers are not summed (a viewer of two days is one person, or two
viewer-days: the range gives viewer-days as `viewer_days`).
"""
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from videoflix.analytics.beacons import POINTS
from videoflix.analytics.models import VideoDay, VideoDayBucket
from videoflix.extensions import db
from videoflix.videos.models import Video

SUMS = ("sessions", "views", "viewers", "watched", "view_share", "stalls", "stalled", "switches", "errors")


@dataclass
class Totals:
    """Summed counts of one video over some days, and its distributions."""

    sums: Counter
    retention: Counter  # point k -> views that passed it
    ttff: Counter  # ms bin -> sessions
    renditions: Counter  # label -> sessions

    @classmethod
    def empty(cls):
        return cls(Counter(), Counter(), Counter(), Counter())

    def add(self, other):
        for name in ("sums", "retention", "ttff", "renditions"):
            getattr(self, name).update(getattr(other, name))

    def summary(self):
        sums = self.sums
        views = sums["views"]
        watched, stalled = sums["watched"], sums["stalled"]
        return {
            "sessions": sums["sessions"],
            "views": views,
            "watch_seconds": round(watched, 1),
            "average_percent_watched": round(100 * sums["view_share"] / views, 1) if views else None,
            "retention": [round(self.retention[k] / views, 4) if views else None for k in range(POINTS)],
            "median_ttff_ms": median(self.ttff),
            "rebuffering_ratio": round(stalled / (watched + stalled), 4) if watched + stalled > 0 else None,
            "stalls": sums["stalls"],
            "quality_switches": sums["switches"],
            "errors": sums["errors"],
            "renditions": dict(sorted(self.renditions.items())),
        }


def median(histogram):
    """The median of a {value: count} histogram (the mean of the two middle values for an even
    count), or None when empty."""
    total = sum(histogram.values())
    if not total:
        return None
    wanted = sorted({(total - 1) // 2, total // 2})
    found, seen = [], 0
    for value in sorted(histogram):
        seen += histogram[value]
        while wanted and wanted[0] < seen:
            found.append(value)
            wanted.pop(0)
    return sum(found) / len(found)


def days_between(start, end):
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _load(video_ids, start, end):
    """{video_id: {day: Totals}} of the rolled-up counts in start..end."""
    result = defaultdict(lambda: defaultdict(Totals.empty))
    in_range = (VideoDay.video_id.in_(video_ids), VideoDay.day.between(start, end))
    for row in db.session.execute(select(VideoDay).where(*in_range)).scalars():
        result[row.video_id][row.day].sums.update({name: getattr(row, name) for name in SUMS})
    buckets = db.session.execute(
        select(VideoDayBucket.video_id, VideoDayBucket.day, VideoDayBucket.metric, VideoDayBucket.bucket,
               VideoDayBucket.count)
        .where(VideoDayBucket.video_id.in_(video_ids), VideoDayBucket.day.between(start, end))
    )
    for video_id, day, metric, bucket, count in buckets:
        totals = result[video_id][day]
        if metric == "retention":
            totals.retention[int(bucket)] += count
        elif metric == "ttff":
            totals.ttff[int(bucket)] += count
        elif metric == "rendition":
            totals.renditions[bucket] += count
    return result


def video_stats(video, start, end):
    """A video's statistics over start..end (dates, inclusive): totals and one entry per day."""
    per_day = _load([video.id], start, end)[video.id]
    overall = Totals.empty()
    days = []
    for day in days_between(start, end):
        totals = per_day.get(day) or Totals.empty()
        overall.add(totals)
        days.append({"date": day.isoformat(), "unique_viewers": totals.sums["viewers"], **totals.summary()})
    summary = overall.summary()
    summary["viewer_days"] = overall.sums["viewers"]
    return {"video_id": video.id, "title": video.title, "duration": video.duration, "start": start.isoformat(),
            "end": end.isoformat(), "totals": summary, "days": days}


def catalogue_stats(start, end, limit=10):
    """The videos with the most watch time, and those that play worst (highest rebuffering ratio,
    then most errors per session, then slowest median start), over start..end."""
    in_range = VideoDay.day.between(start, end)
    rows = db.session.execute(
        select(VideoDay.video_id, Video.title, func.sum(VideoDay.watched).label("watched"))
        .join(Video, Video.id == VideoDay.video_id).where(in_range)
        .group_by(VideoDay.video_id, Video.title).having(func.sum(VideoDay.sessions) > 0)
    ).all()
    titles = {row.video_id: row.title for row in rows}
    loaded = _load(list(titles), start, end) if titles else {}
    entries = []
    for video_id, per_day in loaded.items():
        overall = Totals.empty()
        for totals in per_day.values():
            overall.add(totals)
        summary = overall.summary()
        entries.append({"video_id": video_id, "title": titles[video_id], **{
            k: summary[k] for k in ("sessions", "views", "watch_seconds", "average_percent_watched",
                                    "median_ttff_ms", "rebuffering_ratio", "errors")}})
    top = sorted(entries, key=lambda e: (-e["watch_seconds"], e["video_id"]))[:limit]
    worst = sorted(entries, key=lambda e: (-(e["rebuffering_ratio"] or 0), -e["errors"] / e["sessions"],
                                           -(e["median_ttff_ms"] or 0), e["video_id"]))[:limit]
    return {"start": start.isoformat(), "end": end.isoformat(), "top_watch_time": top, "worst_quality": worst}
