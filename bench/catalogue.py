"""Catalogue and watch-progress benchmark (issue 12), in process (Flask's test client), on
PostgreSQL and Redis:

1. GET /api/video/?limit=24, ?q=<word>&limit=24 (a word with a fixed number of matches, and one
   matching a fixed share of the table) and ?category=<name>&limit=24 on two catalogues, 10,000
   and 100,000 ready videos (two scratch databases), requests alternating between them: medians,
   and the median of the per-pair 100k/10k ratios (constant: about 1). EXPLAIN ANALYZE shows the
   GIN index serving the search and the totals read from catalogue_count.
2. The unpaged GET /api/video/ with 10,000 videos: today's route against the previous one
   (marshmallow's dump of the same rows, mounted at /bench/old-list/ in this run), same bytes.
3. PUT /api/video/<id>/progress/ from --viewers simulated viewers, each one call every 10 s, for
   --seconds: errors (must be 0), median and p95 latency, and how late calls started.

    .venv/bin/python bench/catalogue.py [--database-url postgresql://postgres@127.0.0.1:5432/test]
        [--redis-url redis://127.0.0.1:6379/7] [--repeat 40] [--viewers 500] [--seconds 30]
        [--threads 4] [--only pages|progress]

Part 1 also measures the worst cases of issue 18 (a catalogue request at 100,000 videos must
answer in 50 ms on PostgreSQL whatever its parameters): the last page of the list and of a
category, one-letter words, prefixes matching most of the table, a word in every title, the
first 1,000 matches' last page, category + q; medians and p95 beside the easy requests; then
search pages past the first 1,000 matches and searches without limit (every match), which the
contract allows and which are not bounded.

Rows are bulk-inserted with SQL (executemany), never through the API. Everything lives in
scratch databases (dropped at exit) and under unique Redis key prefixes (deleted at exit).
"""
import argparse
import os
import random
import statistics
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import jsonify, request  # noqa: E402
from flask_jwt_extended import jwt_required  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import desc, event, func, insert, select, text  # noqa: E402

from tests.fixtures.databases import scratch_database  # noqa: E402
from videoflix import create_app  # noqa: E402
from videoflix.auth.models import User  # noqa: E402
from videoflix.auth.sessions import issue  # noqa: E402
from videoflix.extensions import db, redis_client  # noqa: E402
from videoflix.videos.api.schemas import list_response, videos_schema  # noqa: E402
from videoflix.videos.catalogue.queries import ready_total  # noqa: E402
from videoflix.videos.models import READY, Video, fulltext  # noqa: E402

SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "den", "mar", "quil", "bro", "zen", "pha", "tor"]
CATEGORIES = ["Drama", "Comedy", "Documentary", "Nature", "Action", "Animation", "Music", "Sports"]
NEEDLE = "lighthouse"  # in exactly NEEDLE_ROWS titles, whatever the table size
NEEDLE_ROWS = 60
COMMON = "ocean"  # in 1 % of the descriptions
EVERY = "film"  # the last word of every title
BATCH = 5_000
SMALL, LARGE = 10_000, 100_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def words(rng, n):
    return " ".join("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))) for _ in range(n))


def video_rows(rng, start, count):
    """`count` ready-video rows with ids from `start`: random titles, descriptions, categories."""
    for n in range(start, start + count):
        description = words(rng, 14)
        if n % 100 == 7:
            description += f" {COMMON}"
        title = f"{words(rng, 3).title()} {EVERY}"
        if n % 150 == 3 and n // 150 < NEEDLE_ROWS:
            title = f"The {NEEDLE} {title}"
        yield {
            "title": title, "description": description, "category": CATEGORIES[n % len(CATEGORIES)],
            "created_at": T0 - timedelta(minutes=n), "updated_at": T0, "status": READY, "progress": 100,
            "attempts": 1, "renditions": [], "duration": 600.0,
            "thumbnail": f"{n}/v{n:x}/thumbnail.jpg" if n % 3 else None,
        }


def insert_videos(app, rng, start, count):
    with app.app_context():
        rows = video_rows(rng, start, count)
        while batch := [row for _, row in zip(range(BATCH), rows)]:
            db.session.execute(insert(Video), batch)
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # As autovacuum would after a bulk import.
            conn.exec_driver_sql("VACUUM ANALYZE video, catalogue_count")


def timed(client, url, headers, repeat, warmup=3):
    """Median (ms) of `repeat` GETs after `warmup` ones, and the last response."""
    samples = []
    for n in range(repeat + warmup):
        t = time.perf_counter()
        response = client.get(url, headers=headers)
        elapsed = time.perf_counter() - t
        assert response.status_code == 200, (url, response.status_code, response.get_data()[:200])
        if n >= warmup:
            samples.append(elapsed * 1000)
    return statistics.median(samples), response


def explain(app, client, url, headers):
    """EXPLAIN ANALYZE of every SELECT the request runs."""
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and ("video" in statement or "catalogue_count" in statement):
            statements.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        client.get(url, headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    plans = []
    with engine.connect() as conn:
        for statement, parameters in statements:
            raw = conn.connection.dbapi_connection.cursor()
            raw.execute("EXPLAIN (ANALYZE, COSTS OFF) " + statement, parameters)
            plans.append("\n".join("    " + r[0] for r in raw.fetchall()))
            raw.close()
    return plans


def add_old_list(app):
    """The list route as it was before this change: marshmallow dumps the rows."""

    @jwt_required()
    def old_list():
        rows = db.session.execute(
            select(Video.id, Video.created_at, Video.title, Video.description, Video.thumbnail, Video.category)
            .where(Video.status == READY)
            .order_by(Video.created_at.desc(), Video.id.desc())
        ).mappings().all()
        return jsonify(videos_schema.dump(rows))

    app.add_url_rule("/bench/old-list/", "bench_old_list", old_list)


def old_ready_page(category, q, limit, offset):
    """The catalogue page as it was before issue 18 (commit 2df7a05's queries.ready_page), for a
    same-run comparison: every search counted and sorted all its matches, offsets were skipped
    through the table, a one-letter word was a prefix."""
    conditions, order = [Video.status == READY], [Video.created_at.desc(), Video.id.desc()]
    if category is not None:
        conditions.append(func.lower(Video.category) == category.lower())
    terms = fulltext.words(q or "")
    if terms:
        conditions.append(text("video.search_vector @@ to_tsquery('simple', :old_query)").bindparams(
            old_query=" & ".join(f"{t}:*" for t in terms)))
        order.insert(0, desc(text("(video.search_vector @@ to_tsquery('simple', :old_title))").bindparams(
            old_title=" & ".join(f"{t}:*A" for t in terms))))
    columns = (Video.id, Video.created_at, Video.title, Video.description, Video.thumbnail, Video.category)
    rows = db.session.execute(select(*columns).where(*conditions).order_by(*order).offset(offset or None)
                              .limit(limit)).all()
    if len(rows) < limit and (rows or not offset):
        return rows, offset + len(rows)
    if terms:
        return rows, db.session.execute(select(func.count()).select_from(Video).where(*conditions)).scalar_one()
    return rows, ready_total(category)


def add_old_page(app):
    """/bench/old-page/: GET /api/video/ with limit as it was before issue 18."""

    @jwt_required()
    def old_page():
        args = request.args
        rows, count = old_ready_page(args.get("category"), args.get("q"), int(args["limit"]),
                                     int(args.get("offset", 0)))
        response = list_response(rows)
        response.headers["X-Total-Count"] = str(count)
        return response

    app.add_url_rule("/bench/old-page/", "bench_old_page", old_page)


def make_viewers(app, count, name="viewer"):
    """`count` active accounts (bulk-inserted) and an access token each."""
    now = datetime.now(UTC)
    with app.app_context():
        db.session.execute(insert(User), [
            {"email": f"{name}{n}@bench.example", "password_hash": "!", "is_active": True, "is_staff": False,
             "created_at": now, "updated_at": now}
            for n in range(count)
        ])
        users = db.session.execute(
            select(User).where(User.email.like(f"{name}%@bench.example")).order_by(User.id)
        ).scalars()
        tokens = [issue(user)[0] for user in users]
        db.session.commit()
    return tokens


def p95(samples):
    return sorted(samples)[min(len(samples) - 1, int(len(samples) * 0.95))]


def paired(small, large, url, repeat, warmup=3):
    """The same GET on both catalogues (`url` a string, or a function of the catalogue's size),
    alternating (small, large, small, ...), so load from elsewhere on the machine hits both alike:
    (samples ms small, samples ms large, median of the per-pair ratios large/small, the small
    and the large catalogue's last responses)."""
    small_url, large_url = (url(SMALL), url(LARGE)) if callable(url) else (url, url)
    for _ in range(warmup):
        timed(small.client, small_url, small.headers, 1, warmup=0)
        timed(large.client, large_url, large.headers, 1, warmup=0)
    pairs = []
    for _ in range(repeat):
        a, small_response = timed(small.client, small_url, small.headers, 1, warmup=0)
        b, response = timed(large.client, large_url, large.headers, 1, warmup=0)
        pairs.append((a, b))
    return ([a for a, _ in pairs], [b for _, b in pairs], statistics.median(b / a for a, b in pairs),
            small_response, response)


def total(response):
    """X-Total-Count, with a ~ when it is an estimate."""
    estimated = response.headers.get("X-Total-Count-Estimated") == "true"
    return ("~" if estimated else "") + response.headers.get("X-Total-Count", "-")


# The easy requests, then the worst cases of issue 18 (finding 9). A function: the URL depends on
# the catalogue's size (its last page).
PAGE_URLS = {
    "limit=24": "/api/video/?limit=24",
    "limit=24&offset=240": "/api/video/?limit=24&offset=240",
    f"q={NEEDLE}&limit=24 ({NEEDLE_ROWS} matches)": f"/api/video/?q={NEEDLE}&limit=24",
    f"q={COMMON}&limit=24 (1 % match)": f"/api/video/?q={COMMON}&limit=24",
    "category=nature&limit=24": "/api/video/?category=nature&limit=24",
    "categories": "/api/categories/",
    "worst: limit=24, the last page (offset n-24)": lambda n: f"/api/video/?limit=24&offset={n - 24}",
    "worst: limit=100, the middle page (offset n/2)": lambda n: f"/api/video/?limit=100&offset={n // 2}",
    "worst: category=nature, its last page": lambda n: f"/api/video/?category=nature&limit=24&offset={n // 8 - 24}",
    "worst: q=t (one letter: the word t only)": "/api/video/?q=t&limit=24",
    "worst: q=m k (one-letter words)": "/api/video/?q=m%20k&limit=24",
    "worst: q=ta (a two-letter prefix, ~70 %)": "/api/video/?q=ta&limit=24",
    "worst: q=ta lo (two prefixes, ~half)": "/api/video/?q=ta%20lo&limit=24",
    f"worst: q={EVERY} (a word in every title)": f"/api/video/?q={EVERY}&limit=24",
    f"worst: q={EVERY}, the window's last page (976)": f"/api/video/?q={EVERY}&limit=24&offset=976",
    "worst: q=ta lo, the window's last page": "/api/video/?q=ta%20lo&limit=24&offset=976",
    f"worst: q={COMMON}, the window's last page": f"/api/video/?q={COMMON}&limit=24&offset=976",
    "worst: q=mar den ka, limit=100 offset=900": "/api/video/?q=mar%20den%20ka&limit=100&offset=900",
    "worst: category=nature&q=ta, offset 976": "/api/video/?category=nature&q=ta&limit=24&offset=976",
    f"worst: category=nature&q={COMMON}, offset 476": f"/api/video/?category=nature&q={COMMON}&limit=24&offset=476",
    # Past the first 1,000 matches a search page skips its offset in the database (README):
    # among the title matches, past them (the title matches counted), the last page.
    f"deep: q={EVERY}, offset n/2 (title matches)": lambda n: f"/api/video/?q={EVERY}&limit=24&offset={n // 2}",
    "deep: q=ta, offset n/2 (past the title matches)": lambda n: f"/api/video/?q=ta&limit=24&offset={n // 2}",
    f"deep: q={EVERY}, the last page": lambda n: f"/api/video/?q={EVERY}&limit=24&offset={n - 24}",
    "deep: category=nature&q=ta, offset 2000": "/api/video/?category=nature&q=ta&limit=24&offset=2000",
    f"unpaged: q={COMMON} without limit (every match)": f"/api/video/?q={COMMON}",
    "unpaged: q=ta without limit (every match, ~70 %)": "/api/video/?q=ta",
    "unpaged: category=nature without limit (all of it)": "/api/video/?category=nature",
}


def before_after(cat, args):
    """The paged requests at LARGE videos, before issue 18 (/bench/old-page/) and now, interleaved."""
    print(f"\n== {LARGE:,} videos: before issue 18 (the old queries, /bench/old-page/) and now, interleaved ==")
    print(f"  {'request':52s} {'before: median / p95':>24s} {'now: median / p95':>22s}  before/now")
    for label, url in PAGE_URLS.items():
        url = url(LARGE) if callable(url) else url
        if "limit=" not in url:
            continue  # the old unpaged search sent every match
        olds, news = [], []
        for n in range(args.repeat // 2 + 2):
            old, old_response = timed(cat.client, url.replace("/api/video/", "/bench/old-page/"), cat.headers, 1, 0)
            new, _ = timed(cat.client, url, cat.headers, 1, 0)
            if n >= 2:
                olds.append(old)
                news.append(new)
        print(f"  {label:52s} {statistics.median(olds):8.2f} / {p95(olds):7.2f} ms {statistics.median(news):7.2f} / "
              f"{p95(news):7.2f} ms  x{statistics.median(olds) / statistics.median(news):.1f}  "
              f"(before: X-Total-Count {old_response.headers['X-Total-Count']})")


def estimates(cat):
    """The estimated totals of the big searches against their exact counts."""
    print(f"\n== estimated X-Total-Count against the exact count, {LARGE:,} videos ==")
    for q, category in (("ta", None), ("ta lo", None), (EVERY, None), ("mar den ka", None), ("ta", "nature")):
        url = f"/api/video/?q={q.replace(' ', '%20')}&limit=24" + (f"&category={category}" if category else "")
        response = cat.client.get(url, headers=cat.headers)
        tsquery = " & ".join(f"{word}:*" for word in q.split())
        with cat.app.app_context():
            exact = db.session.execute(text(
                "SELECT count(*) FROM video WHERE status = 'ready' AND search_vector @@ to_tsquery('simple', :q)"
                + (" AND lower(category) = :c" if category else "")), {"q": tsquery, "c": category}).scalar_one()
        shown = int(response.headers["X-Total-Count"])
        print(f"  {url:48s} {total(response):>9s}  exact {exact:7,}  ({100 * (shown - exact) / exact:+.1f} %)")


def page_benchmarks(small, large, args):
    print(f"\n== {SMALL:,} and {LARGE:,} ready videos (PostgreSQL, in process; requests alternate "
          "between the two catalogues) ==")
    print(f"  {'request':52s} {'median / p95 ' + format(SMALL, ','):>22s} {'median / p95 ' + format(LARGE, ','):>22s}"
          f"  large/small (median of {args.repeat} pairs)  X-Total-Count (~ estimated)")
    for label, url in PAGE_URLS.items():
        a, b, ratio, small_response, response = paired(small, large, url, args.repeat)
        print(f"  {label:52s} {statistics.median(a):7.2f} / {p95(a):6.2f} ms {statistics.median(b):7.2f} / "
              f"{p95(b):6.2f} ms   x{ratio:.2f}   {total(small_response)} / {total(response)}")
    estimates(large)
    before_after(large, args)
    print(f"\n== EXPLAIN ANALYZE of the search page, {LARGE:,} videos ==")
    plans = explain(large.app, large.client, f"/api/video/?q={NEEDLE}&limit=24", large.headers)
    for plan in plans:
        print(plan)
    assert any("_fulltext" in plan for plan in plans), "the search did not use the indexes"
    print("  -> the search is served by ix_video_fulltext / ix_video_title_fulltext (GIN on the stored tsvectors)")
    for url in ("/api/video/?limit=24", "/api/video/?category=nature&limit=24"):
        print(f"\n== EXPLAIN ANALYZE of {url}, {LARGE:,} videos (the page, then the total from catalogue_count) ==")
        for plan in explain(large.app, large.client, url, large.headers):
            print(plan)


def unpaged_benchmark(client, headers, args):
    print("\n== the unpaged GET /api/video/, 10,000 videos: before (marshmallow) and after ==")
    # Interleaved (old, new, old, new...), so load from elsewhere on the machine hits both alike.
    olds, news, ratios = [], [], []
    for _ in range(max(10, args.repeat // 2)):
        old, old_response = timed(client, "/bench/old-list/", headers, 1, warmup=0)
        new, new_response = timed(client, "/api/video/", headers, 1, warmup=0)
        olds.append(old)
        news.append(new)
        ratios.append(old / new)
    same = old_response.get_data() == new_response.get_data()
    print(f"  before {statistics.median(olds):7.1f} ms   after {statistics.median(news):7.1f} ms   "
          f"{statistics.median(ratios):.1f}x faster (median of {len(ratios)} paired rounds; "
          f"min {min(ratios):.1f}x)   same bytes: {same} ({len(new_response.get_data()):,} bytes)")
    assert same, "the new list differs from the old one"


def progress_benchmark(app, args, rng):
    """--viewers viewers, each PUTting its position every 10 s (spread evenly), for --seconds."""
    tokens = make_viewers(app, args.viewers)
    with app.app_context():
        video_ids = db.session.execute(select(Video.id).limit(2000)).scalars().all()
    plan = sorted(
        (n * 10.0 / args.viewers + 10.0 * k, n)
        for n in range(args.viewers) for k in range(int(args.seconds // 10) or 1)
    )
    plan = [(due, viewer) for due, viewer in plan if due < args.seconds]
    watching = [rng.choice(video_ids) for _ in range(args.viewers)]
    latencies, lateness, errors = [], [], []
    lock = threading.Lock()
    cursor = iter(plan)
    start = time.perf_counter() + 0.5

    def viewer_loop():
        client = app.test_client()
        while True:
            with lock:
                item = next(cursor, None)
            if item is None:
                return
            due, viewer = item
            delay = start + due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            t = time.perf_counter()
            response = client.put(f"/api/video/{watching[viewer]}/progress/", json={"position": due + 12.5},
                                  headers={"Authorization": f"Bearer {tokens[viewer]}"})
            elapsed = time.perf_counter() - t
            with lock:
                latencies.append(elapsed * 1000)
                lateness.append(max(0.0, (t - start - due) * 1000))
                if response.status_code != 200:
                    errors.append((response.status_code, response.get_data()[:200]))

    threads = [threading.Thread(target=viewer_loop) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    with app.app_context():
        rows = db.session.execute(text("SELECT count(*) FROM watch_progress")).scalar_one()
    print(f"\n== PUT /api/video/<id>/progress/: {args.viewers} viewers, one call each per 10 s, "
          f"{args.seconds:.0f} s (PostgreSQL + Redis, {args.threads} threads) ==")
    print(f"  {len(latencies)} calls ({len(latencies) / args.seconds:.0f}/s), errors {len(errors)}, "
          f"rows {rows}; latency median {statistics.median(latencies):.2f} ms, "
          f"p95 {latencies[int(len(latencies) * 0.95)]:.2f} ms, max {latencies[-1]:.2f} ms; "
          f"calls started late by median {statistics.median(lateness):.1f} ms")
    assert not errors, errors[:3]


@dataclass
class Catalogue:
    app: object
    client: object
    headers: dict


@contextmanager
def catalogue(args, videos, rng):
    """A scratch database with `videos` ready videos, its app, a client and a viewer's headers."""
    prefix = f"vfbench:{uuid.uuid4().hex[:8]}:"
    with scratch_database(args.database_url, prefix="catalogue_bench") as url:
        app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": args.redis_url,
                          "SEARCH_LIMIT": "1000000/minute",
                          "REDIS_PREFIX": prefix, "RATELIMIT_KEY_PREFIX": prefix + "rl",
                          "RATELIMIT_STORAGE_URI": args.redis_url})
        add_old_list(app)
        add_old_page(app)
        try:
            with app.app_context():
                upgrade()
            token = make_viewers(app, 1, "browser")[0]
            insert_videos(app, rng, 0, videos)
            yield Catalogue(app, app.test_client(), {"Authorization": f"Bearer {token}"})
        finally:
            with app.app_context():
                client = redis_client()
                keys = list(client.scan_iter(prefix + "*"))
                if keys:
                    client.delete(*keys)
                db.session.remove()
                db.engine.dispose()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL")
                        or os.environ.get("TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL") or "redis://127.0.0.1:6379/7")
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--viewers", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--only", choices=["pages", "progress"], help="run one part only")
    args = parser.parse_args()
    with catalogue(args, SMALL, random.Random(12)) as small:
        if args.only != "progress":
            with catalogue(args, LARGE, random.Random(12)) as large:
                page_benchmarks(small, large, args)
            unpaged_benchmark(small.client, small.headers, args)
        if args.only != "pages":
            progress_benchmark(small.app, args, random.Random(13))


if __name__ == "__main__":
    main()
