"""The catalogue's bounds (issue 18, finding 9), on SQLite and PostgreSQL: a search's total is exact
up to 1,000 matches and an estimate beyond (PostgreSQL: `X-Total-Count-Estimated: true`), its
pages reach every match (API.md: any offset) and without a limit it answers them all, one-letter
words match whole words only, deep list pages are read from the nearer end and are the same rows,
and searches are rate-limited per account."""
from datetime import timedelta
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert, select

from tests.fixtures.catalogue_rows import T0, add_videos
from tests.fixtures.properties import FEW
from videoflix.extensions import db
from videoflix.videos.models import READY, Video


def bulk_videos(app, count, title_word="common", category=("Drama", "Nature")):
    """`count` ready videos in one executemany: even n has `title_word` in its title, odd n only
    in its description; a minute apart (n = 0 newest); categories alternate by threes."""
    rows = [{
        "title": f"{title_word} clip {n}" if n % 2 == 0 else f"Clip {n}",
        "description": "plain" if n % 2 == 0 else f"about {title_word} things",
        "category": category[(n // 3) % len(category)], "created_at": T0 - timedelta(minutes=n),
        "updated_at": T0, "status": READY, "progress": 100, "attempts": 1, "renditions": [],
    } for n in range(count)]
    with app.app_context():
        db.session.execute(insert(Video), rows)
        db.session.commit()




def ranked(app, word, category=None):
    with app.app_context():
        rows = db.session.execute(select(Video.id, Video.title, Video.description, Video.created_at, Video.category)
                                  .where(Video.status == READY)).all()
    hits = [r for r in rows if word in (r.title + " " + r.description).lower().split()
            and (category is None or r.category.lower() == category.lower())]
    hits.sort(key=lambda r: (word not in r.title.lower().split(), -r.created_at.timestamp(), -r.id))
    return [r.id for r in hits]


def ids(response):
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()]


def postgresql(app):
    with app.app_context():
        return db.engine.dialect.name == "postgresql"


def test_a_search_total_is_exact_up_to_1000_matches(app, client, auth):
    bulk_videos(app, 1000)
    add_videos(app, dict(title="Other film", description="nothing in common here"[:14]))
    response = client.get("/api/video/?q=common&limit=10")
    assert response.headers["X-Total-Count"] == "1000"
    assert "X-Total-Count-Estimated" not in response.headers
    assert ids(response) == ranked(app, "common")[:10]
    assert response.headers["Link"].endswith('offset=10>; rel="next"')
    # The window's last page sees every match: exact too.
    last = client.get("/api/video/?q=common&limit=24&offset=990")
    assert ids(last) == ranked(app, "common")[990:1000] and "Link" not in last.headers
    assert last.headers["X-Total-Count"] == "1000" and "X-Total-Count-Estimated" not in last.headers


def test_beyond_1000_matches_the_total_is_an_estimate_on_postgresql(app, client, auth):
    bulk_videos(app, 1500)
    response = client.get("/api/video/?q=common&limit=10", headers={"Origin": app.config["CORS_ORIGINS"][0]})
    assert ids(response) == ranked(app, "common")[:10]
    exposed = {h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert "x-total-count-estimated" in exposed
    if postgresql(app):
        assert response.headers["X-Total-Count-Estimated"] == "true"
        assert 1000 < int(response.headers["X-Total-Count"]) <= 1500
    else:  # SQLite counts them all
        assert "X-Total-Count-Estimated" not in response.headers
        assert response.headers["X-Total-Count"] == "1500"
    # Fewer matches (a category, a rarer word): exact again.
    narrow = client.get("/api/video/?q=common&category=nature&limit=10")
    assert narrow.headers["X-Total-Count"] == "750" and "X-Total-Count-Estimated" not in narrow.headers
    assert ids(narrow) == ranked(app, "common", "nature")[:10]
    assert client.get("/api/video/?q=clip%201499&limit=5").headers["X-Total-Count"] == "1"


def test_a_search_pages_through_every_match(app, client, auth):
    bulk_videos(app, 2400)
    expected = ranked(app, "common")  # 1,200 title matches, then 1,200 description matches
    # Pages anywhere are the same rows as the full ranking: within the first 1,000 matches, across
    # their end (990), past it among the title matches (1000), across the title matches' end
    # (1190), past every title match (1500) and near the end (2350).
    for offset in (0, 24, 730, 976, 990, 1000, 1190, 1500, 2350):
        page = client.get(f"/api/video/?q=common&limit=24&offset={offset}")
        assert ids(page) == expected[offset:offset + 24], offset
        assert page.headers["Link"].endswith(f'offset={offset + 24}>; rel="next"'), offset
        if postgresql(app):  # more than 1,000 matches: an estimate, never fewer than the rows seen
            assert page.headers["X-Total-Count-Estimated"] == "true"
            assert offset + 25 <= int(page.headers["X-Total-Count"]) <= 2400
        else:
            assert page.headers["X-Total-Count"] == "2400" and "X-Total-Count-Estimated" not in page.headers
    # The last page ends the ranking: no Link, and its total is exact (every match was seen).
    last = client.get("/api/video/?q=common&limit=24&offset=2390")
    assert ids(last) == expected[2390:] and "Link" not in last.headers
    assert last.headers["X-Total-Count"] == "2400" and "X-Total-Count-Estimated" not in last.headers
    beyond = client.get("/api/video/?q=common&limit=24&offset=3000")
    assert beyond.get_json() == [] and "Link" not in beyond.headers
    assert 1000 < int(beyond.headers["X-Total-Count"]) <= 2400
    # A category narrows the deep pages the same way (its title matches are counted too).
    nature = ranked(app, "common", "nature")
    for offset in (590, 600, 1176):
        assert ids(client.get(f"/api/video/?q=common&category=Nature&limit=24&offset={offset}")) == \
            nature[offset:offset + 24]
    # A query without words is no search (any offset).
    assert ids(client.get("/api/video/?q=%21%21&offset=1400&limit=24")) == ids(
        client.get("/api/video/?offset=1400&limit=24"))
    # A small search: any offset past its end is an empty page, exact total.
    for offset in (900, 1500):
        small = client.get(f"/api/video/?q=clip%202399&offset={offset}&limit=5")
        assert small.get_json() == [] and small.headers["X-Total-Count"] == "1" and "Link" not in small.headers


def test_a_search_without_limit_answers_every_match(app, client, auth):
    bulk_videos(app, 1500)
    expected = ranked(app, "common")
    every = client.get("/api/video/?q=common")
    assert ids(every) == expected and len(expected) == 1500
    assert every.headers["X-Total-Count"] == "1500"
    assert "Link" not in every.headers and "X-Total-Count-Estimated" not in every.headers
    rest = client.get("/api/video/?q=common&offset=900")
    assert ids(rest) == expected[900:] and rest.headers["X-Total-Count"] == "1500" and "Link" not in rest.headers
    assert ids(client.get("/api/video/?q=common&category=nature")) == ranked(app, "common", "nature")
    assert client.get("/api/video/?q=common&offset=1500").get_json() == []


def test_deep_list_pages_are_the_same_rows_from_either_end(app, client, auth):
    bulk_videos(app, 300)
    with app.app_context():
        newest = db.session.execute(select(Video.id, Video.category).where(Video.status == READY)
                                    .order_by(Video.created_at.desc(), Video.id.desc())).all()
    every = [r.id for r in newest]
    nature = [r.id for r in newest if r.category == "Nature"]
    for offset, limit in ((0, 24), (100, 24), (140, 20), (150, 7), (276, 24), (290, 24), (299, 100), (300, 5)):
        response = client.get(f"/api/video/?limit={limit}&offset={offset}")
        assert ids(response) == every[offset:offset + limit], (offset, limit)
        assert response.headers["X-Total-Count"] == "300"
        assert ("Link" in response.headers) == (offset + limit < 300)
        assert ids(client.get(f"/api/video/?category=NATURE&limit={limit}&offset={offset // 2}")) == \
            nature[offset // 2:offset // 2 + limit]


def test_one_letter_words_match_whole_words_only(app, client, auth):
    add_videos(app, dict(title="Ocean waves", description="calm"), dict(title="Plan B", description="a b c"),
               dict(title="O brother", description="road movie"))
    titles = lambda r: [item["title"] for item in r.get_json()]  # noqa: E731
    assert titles(client.get("/api/video/?q=o")) == ["O brother"]
    assert set(titles(client.get("/api/video/?q=b"))) == {"Plan B"}
    assert titles(client.get("/api/video/?q=oc")) == ["Ocean waves"]
    assert titles(client.get("/api/video/?q=o%20bro")) == ["O brother"]
    assert titles(client.get("/api/video/?q=w%20oce")) == []


@pytest.fixture
def search_limit(app_config):
    app_config["SEARCH_LIMIT"] = "3/minute"


def test_searches_are_rate_limited_per_account(search_limit, app, client, auth, make_user):
    add_videos(app, dict(title="Ocean waves"))
    for _ in range(3):
        assert client.get("/api/video/?q=ocean&limit=5").status_code == 200
    blocked = client.get("/api/video/?q=ocean&limit=5")
    assert blocked.status_code == 429
    assert blocked.get_json() == {"detail": "Request was throttled: limit of 3 per 1 minute. Please try again later."}
    assert 0 < int(blocked.headers["Retry-After"]) <= 61
    # Browsing is no search; another account has its own budget.
    assert client.get("/api/video/?limit=5").status_code == 200
    assert client.get("/api/video/?q=%20%21&limit=5").status_code == 200
    make_user("other@example.com")
    other = client.application.test_client()
    other.post("/api/login/", json={"email": "other@example.com", "password": "correct-horse-battery"})
    assert other.get("/api/video/?q=ocean&limit=5").status_code == 200


@pytest.fixture
def no_search_limit(app_config):
    app_config["SEARCH_LIMIT"] = "100000/minute"


@FEW
@given(q=st.text(max_size=60), offset=st.sampled_from([None, 0, 999, 1000, 1500]),
       limit=st.sampled_from([None, 1, 100]))
def test_any_query_text_is_200_or_a_4xx_with_json(no_search_limit, app, client, auth, q, offset, limit):
    url = f"/api/video/?q={quote(q, safe='')}"
    url += "" if offset is None else f"&offset={offset}"
    url += "" if limit is None else f"&limit={limit}"
    response = client.get(url)
    assert response.status_code == 200 or 400 <= response.status_code < 500, (q, response.status_code)
    body = response.get_json()
    assert body is not None
    if response.status_code == 200:
        assert isinstance(body, list) and "X-Total-Count" in response.headers
    else:
        assert isinstance(body, dict) and set(body) <= {"q", "offset", "limit", "detail"}
