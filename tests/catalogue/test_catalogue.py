"""The catalogue (API.md, "Catalogue: filters, search and pages"), on SQLite and PostgreSQL."""
import pytest
from flask_migrate import upgrade

from tests.fixtures.catalogue_rows import PENDING, add_videos
from tests.fixtures.databases import scratch_database
from videoflix import create_app
from videoflix.auth.users import create_user
from videoflix.extensions import db
from videoflix.videos.api.schemas import videos_schema
from videoflix.videos.models import Video


@pytest.fixture
def shelf(app):
    """Six videos, newest first in this order except where `age` says otherwise."""
    return add_videos(
        app,
        dict(title="Ocean waves at night", description="Calm sea", category="Nature", age=5),
        dict(title="Mountain ridge", description="An oceanic climate seen from above", category="Nature", age=1),
        dict(title="The oceanographer", description="A drama at sea", category="Drama", age=3),
        dict(title="City lights", description="Neon and rain", category="drama", age=2),
        dict(title="Ocean draft", description="unfinished", category="Nature", status=PENDING, age=0),
        dict(title="Café au lait", description="Morning routine", category="Food", age=4),
    )


def titles(response):
    return [item["title"] for item in response.get_json()]


def test_without_parameters_the_list_is_exactly_as_before(app, client, auth, shelf):
    response = client.get("/api/video/?unknown=1")
    assert response.status_code == 200
    assert "X-Total-Count" not in response.headers and "Link" not in response.headers
    with app.test_request_context("/api/video/"):
        rows = db.session.execute(
            db.select(Video.id, Video.created_at, Video.title, Video.description, Video.thumbnail, Video.category)
            .where(Video.status == "ready").order_by(Video.created_at.desc(), Video.id.desc())
        ).mappings().all()
        expected = videos_schema.dump(rows)
    # The same JSON, byte for byte, as marshmallow's dump of the same rows (what the route sent before).
    assert response.get_data() == app.json.response(expected).get_data()
    assert titles(response) == ["Mountain ridge", "City lights", "The oceanographer", "Café au lait",
                                "Ocean waves at night"]
    assert all(set(item) == {"id", "created_at", "title", "description", "thumbnail_url", "category"}
               for item in response.get_json())
    thumbs = [item["thumbnail_url"] for item in response.get_json()]
    assert any(t is None for t in thumbs) and any(t and t.endswith("/thumbnail.jpg?v=abc" + t.split("/")[-2])
                                                    for t in thumbs)


def test_search_matches_every_word_as_a_prefix_title_matches_first(client, auth, shelf):
    response = client.get("/api/video/?q=OCEAN")
    # Titles first (newest first among them), then description-only matches; never the pending one.
    assert titles(response) == ["The oceanographer", "Ocean waves at night", "Mountain ridge"]
    assert response.headers["X-Total-Count"] == "3"
    assert titles(client.get("/api/video/?q=oce%20sea")) == ["The oceanographer", "Ocean waves at night"]
    assert titles(client.get("/api/video/?q=sea%20calm")) == ["Ocean waves at night"]
    # A word matches as the start of a word only, not in its middle.
    assert titles(client.get("/api/video/?q=cean")) == []
    assert titles(client.get("/api/video/?q=caf%C3%A9")) == ["Café au lait"]
    # Search syntax of either database is just text.
    syntax = titles(client.get("/api/video/?q=ocean%22%20*%20-%3A(%20%26%20%7C"))
    assert syntax == titles(client.get("/api/video/?q=ocean"))
    assert client.get("/api/video/?q=nothing-like-it").get_json() == []


def test_search_follows_edits_and_deletes(app, client, auth, shelf):
    with app.app_context():
        video = db.session.get(Video, shelf[3])
        video.title, video.description = "Harbour lights", "Oceanfront rain"
        db.session.delete(db.session.get(Video, shelf[0]))
        db.session.commit()
    assert titles(client.get("/api/video/?q=ocean")) == ["The oceanographer", "Mountain ridge", "Harbour lights"]
    assert titles(client.get("/api/video/?q=city")) == []


def test_category_ignores_letter_case_and_combines_with_search(client, auth, shelf):
    response = client.get("/api/video/?category=DRAMA")
    assert titles(response) == ["City lights", "The oceanographer"]
    assert response.headers["X-Total-Count"] == "2"
    assert titles(client.get("/api/video/?category=nature&q=ocean")) == ["Ocean waves at night", "Mountain ridge"]
    assert client.get("/api/video/?category=Dram").get_json() == []


def test_pages_with_total_and_next_link(client, auth, shelf):
    first = client.get("/api/video/?limit=2&q=oc")
    assert first.headers["X-Total-Count"] == "3"
    assert first.headers["Link"] == '<http://localhost/api/video/?q=oc&limit=2&offset=2>; rel="next"'
    assert titles(first) == ["The oceanographer", "Ocean waves at night"]
    last = client.get("/api/video/?limit=2&offset=2&q=oc")
    assert titles(last) == ["Mountain ridge"]
    assert last.headers["X-Total-Count"] == "3" and "Link" not in last.headers
    beyond = client.get("/api/video/?limit=2&offset=10")
    assert beyond.get_json() == [] and beyond.headers["X-Total-Count"] == "5"
    full = client.get("/api/video/?limit=5")
    assert len(full.get_json()) == 5 and "Link" not in full.headers and full.headers["X-Total-Count"] == "5"
    assert client.get("/api/video/?offset=3").headers["X-Total-Count"] == "5"


def test_page_headers_are_exposed_to_browsers(app, client, auth, shelf):
    origin = app.config["CORS_ORIGINS"][0]
    response = client.get("/api/video/?limit=1", headers={"Origin": origin})
    exposed = {h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"x-total-count", "link"} <= exposed


@pytest.mark.parametrize(("query", "field", "message"), [
    ("limit=0", "limit", "Must be greater than or equal to 1 and less than or equal to 100."),
    ("limit=1000", "limit", "Must be greater than or equal to 1 and less than or equal to 100."),
    ("limit=ten", "limit", "Not a valid integer."),
    ("limit=", "limit", "Not a valid integer."),
    ("offset=-1", "offset", "Must be greater than or equal to 0 and less than or equal to 2147483647."),
    ("offset=1.5", "offset", "Not a valid integer."),
    ("offset=99999999999999999999", "offset",
     "Must be greater than or equal to 0 and less than or equal to 2147483647."),
    ("category=", "category", "This field may not be blank."),
    ("category=" + "x" * 81, "category", "Ensure this field has no more than 80 characters."),
    ("q=" + "a" * 201, "q", "Ensure this field has no more than 200 characters."),
    ("q=a%00b", "q", "Null characters are not allowed."),
])
def test_bad_parameters_are_400_keyed_by_parameter(client, auth, shelf, query, field, message):
    response = client.get(f"/api/video/?{query}")
    assert response.status_code == 400
    assert response.get_json() == {field: [message]}


def test_categories_with_ready_videos_by_name(client, auth, shelf):
    response = client.get("/api/categories/")
    assert response.status_code == 200
    assert response.get_json() == [
        {"name": "Drama", "count": 2}, {"name": "Food", "count": 1}, {"name": "Nature", "count": 2},
    ]


def test_catalogue_routes_need_authentication(client, shelf):
    for path in ("/api/video/?limit=2", "/api/categories/"):
        response = client.get(path)
        assert response.status_code == 401
        assert response.get_json() == {"detail": "Authentication credentials were not provided."}


def test_migrations_index_the_videos_that_existed_before_and_follow_later_ones(tmp_path, database_url):
    """The migrations build the search index and the category counts over existing rows; their
    triggers (and PostgreSQL's generated column) serve the rows written after them."""
    def check(url):
        app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "MEDIA_ROOT": str(tmp_path)})
        with app.app_context():
            upgrade(revision="7c1e2a9d4b10")
            db.session.execute(db.text(
                "INSERT INTO video (title, description, category, created_at, updated_at, status, progress, "
                "attempts, renditions) VALUES ('Old ocean film', '', 'Drama', :t, :t, 'ready', 0, 0, '[]')"
            ), {"t": "2025-01-01 00:00:00+00:00"})
            db.session.commit()
            upgrade()
        add_videos(app, dict(title="New oceans"))
        with app.test_client() as client:
            with app.app_context():
                create_user("user@example.com", "correct-horse-battery", active=True)
                db.session.commit()
            client.post("/api/login/", json={"email": "user@example.com", "password": "correct-horse-battery"})
            assert titles(client.get("/api/video/?q=ocean")) == ["New oceans", "Old ocean film"]
            assert client.get("/api/categories/").get_json() == [{"name": "Drama", "count": 2}]
        with app.app_context():
            db.engine.dispose()

    if database_url.startswith("postgresql"):
        with scratch_database(database_url, prefix="vf_search") as url:
            check(url)
    else:
        check(f"sqlite:///{tmp_path / 'migrated.sqlite3'}")
