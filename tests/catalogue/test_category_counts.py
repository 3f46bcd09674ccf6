"""The ready-video counts the database keeps per category (videoflix.videos.models.category_counts), on SQLite and
PostgreSQL: they follow every kind of write to `video`, and the catalogue reads them instead of
counting the table."""
import threading

import pytest
from sqlalchemy import event, text

from tests.fixtures.catalogue_rows import PENDING, add_videos
from videoflix.extensions import db
from videoflix.videos.models import FAILED, PROCESSING, READY, CategoryCount, Video


def stored_counts():
    return {row.category: row.ready for row in db.session.scalars(db.select(CategoryCount))}


def true_counts():
    """What the counts must be: counted from `video` itself."""
    rows = db.session.execute(text("SELECT category, count(*) FROM video WHERE status = 'ready' GROUP BY category"))
    return dict(rows.all())


def assert_counts(expected):
    db.session.expire_all()
    assert true_counts() == expected
    assert stored_counts() == expected


def test_counts_follow_orm_writes_bulk_sql_and_deletes(app):
    ids = add_videos(
        app,
        dict(category="Drama"), dict(category="Drama"), dict(category="drama"),
        dict(category="Nature", status=PENDING), dict(category="Food", status=FAILED),
    )
    with app.app_context():
        assert_counts({"Drama": 2, "drama": 1})

        # Published, re-categorised, failed before ever being ready, taken back: one at a time.
        db.session.get(Video, ids[3]).status = READY
        db.session.commit()
        assert_counts({"Drama": 2, "drama": 1, "Nature": 1})
        db.session.get(Video, ids[0]).category = "Nature"
        db.session.commit()
        assert_counts({"Drama": 1, "drama": 1, "Nature": 2})
        db.session.get(Video, ids[4]).category = "Drama"  # not ready: no count moves
        db.session.commit()
        assert_counts({"Drama": 1, "drama": 1, "Nature": 2})
        db.session.get(Video, ids[2]).status = PROCESSING  # the last "drama": its row goes
        db.session.commit()
        assert_counts({"Drama": 1, "Nature": 2})
        video = db.session.get(Video, ids[3])
        video.status, video.category = PENDING, "Food"  # both columns in one UPDATE
        db.session.commit()
        assert_counts({"Drama": 1, "Nature": 1})

        # Bulk SQL, as a migration or an operator would write it.
        db.session.execute(text("UPDATE video SET status = 'ready'"))
        db.session.commit()
        assert_counts({"Drama": 2, "drama": 1, "Nature": 1, "Food": 1})
        db.session.execute(text("UPDATE video SET category = 'Film' WHERE category IN ('Drama', 'drama')"))
        db.session.commit()
        assert_counts({"Film": 3, "Nature": 1, "Food": 1})
        db.session.execute(text("UPDATE video SET status = 'ready'"))  # no change: nothing counted twice
        db.session.commit()
        assert_counts({"Film": 3, "Nature": 1, "Food": 1})

        # Deletes: through the ORM and in bulk; a rolled-back write leaves the counts as they were.
        db.session.delete(db.session.get(Video, ids[1]))
        db.session.commit()
        assert_counts({"Film": 2, "Nature": 1, "Food": 1})
        db.session.execute(text("DELETE FROM video WHERE category = 'Film'"))
        db.session.rollback()
        assert_counts({"Film": 2, "Nature": 1, "Food": 1})
        db.session.execute(text("DELETE FROM video"))
        db.session.commit()
        assert_counts({})


def test_the_catalogue_reads_the_counts_not_the_table(app, client, auth):
    add_videos(app, *[dict(category="Nature" if n % 3 else "Drama") for n in range(9)])
    statements = []
    with app.app_context():
        listener = lambda conn, cursor, statement, *args: statements.append(statement.lower())  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            page = client.get("/api/video/?limit=2")
            by_category = client.get("/api/video/?category=NATURE&limit=2")
            categories = client.get("/api/categories/")
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
    assert page.headers["X-Total-Count"] == "9"
    assert by_category.headers["X-Total-Count"] == "6"
    assert [v["category"] for v in by_category.get_json()] == ["Nature", "Nature"]
    assert categories.get_json() == [{"name": "Drama", "count": 3}, {"name": "Nature", "count": 6}]
    counting = [s for s in statements if "count(" in s]
    assert counting == [], counting
    assert sum("catalogue_count" in s for s in statements) == 3


def test_a_search_total_still_counts_its_matches(app, client, auth):
    add_videos(app, *[dict(title=f"Ocean {n}" if n % 2 else f"River {n}") for n in range(7)])
    response = client.get("/api/video/?q=ocean&limit=2")
    assert response.headers["X-Total-Count"] == "3"
    assert "rel=\"next\"" in response.headers["Link"]


def test_two_transactions_opening_a_new_category_both_count(app, database_url):
    """Two uncommitted first videos of one category: the second upsert waits for the first's row
    and then adds to it (PostgreSQL; SQLite has one writer at a time)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("concurrent writers: PostgreSQL")
    insert = text(
        "INSERT INTO video (title, description, category, created_at, updated_at, status, progress, attempts, "
        "renditions) VALUES ('t', '', 'Brand new', now(), now(), 'ready', 0, 0, '[]')"
    )
    with app.app_context():
        first, second = db.engine.connect(), db.engine.connect()
        try:
            first.execute(insert)  # holds the new category's row, uncommitted
            done = threading.Event()

            def write_second():
                second.execute(insert)
                second.commit()
                done.set()

            thread = threading.Thread(target=write_second)
            thread.start()
            assert not done.wait(0.5), "the second writer must wait for the first's row"
            first.commit()
            thread.join(10)
            assert done.is_set()
        finally:
            first.close()
            second.close()
        assert_counts({"Brand new": 2})


def test_truncate_clears_the_counts(app, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("TRUNCATE: PostgreSQL")
    add_videos(app, dict(category="Drama"), dict(category="Nature"))
    with app.app_context():
        assert_counts({"Drama": 1, "Nature": 1})
        db.session.execute(text("TRUNCATE video CASCADE"))
        db.session.commit()
        assert_counts({})
