"""The catalogue (API.md, "Catalogue"): ready videos filtered by category and searched by words,
one page at a time, and the categories that have ready videos.

Everything is done by the database, and every paged request reads a bounded number of rows
whatever its parameters (the cost cliff of issue 18: at 100,000 videos no request may read the
table):
- The totals of the unfiltered and category lists, and the categories, come from the counts its
  triggers keep (videoflix.videos.models.category_counts): a few rows at any table size.
- A list page's ids come from an index-only scan (`ix_video_status_created_at_id`, or
  `ix_video_category_newest` for a category), read from the nearer end of the list: a deep
  offset skips index entries only, at most half the list; then its rows by primary key.
- A search (videoflix.videos.models.fulltext) counts its matches up to EXACT_TOTAL + 1 and stops:
  beyond, its total is an estimate (a sample of the table; `estimated`, the answer's
  `X-Total-Count-Estimated: true`). Its ranking is the title matches, newest first, then the
  other matches, newest first: two queries of at most offset + limit ids each, that the planner
  serves from the created_at index or from the full-text indexes, whichever is cheaper; the page
  is cut from their concatenation. Within its first SEARCH_WINDOW matches a page reads at most
  that many ids; a deeper page skips `offset` matches in the database, so its cost grows with the
  offset (and from past the last title match, the title matches are counted). A search without
  `limit` answers every match, as the unpaged list does. The same queries on SQLite (FTS5),
  whose total is always exact.
"""
from dataclasses import dataclass

from sqlalchemy import case, func, literal, not_, select, text

from videoflix.extensions import db
from videoflix.videos.models import READY, CategoryCount, Video, fulltext

# The six list fields' columns, in schemas.list_items' order.
LIST_COLUMNS = (Video.id, Video.created_at, Video.title, Video.description, Video.thumbnail, Video.category)
NEWEST_FIRST = (Video.created_at.desc(), Video.id.desc())
OLDEST_FIRST = (Video.created_at.asc(), Video.id.asc())
# A search's total is exact up to this many matches, an estimate beyond (API.md).
EXACT_TOTAL = 1000
# A search page that ends within its first SEARCH_WINDOW matches reads at most that many ids; a
# deeper one skips its offset in the database (slower the deeper it is).
SEARCH_WINDOW = 1000
# How many rows the estimate of a large search's total looks at.
SAMPLE_ROWS = 2000


@dataclass
class Page:
    rows: list
    total: int
    # The offset of the next page, None when this one is the last.
    next_offset: int | None
    # `total` is an estimate (a search with more than EXACT_TOTAL matches, on PostgreSQL).
    estimated: bool = False


def is_search(q):
    """Whether `q` searches (has a word): what the search rate limit applies to."""
    return bool(fulltext.words(q or ""))


def all_ready_rows():
    """Every ready video's list columns, newest first (the unpaged list without parameters). Plain
    rows through the session's connection: the ORM's result handling would cost as much again."""
    stmt = select(*LIST_COLUMNS).where(Video.status == READY).order_by(*NEWEST_FIRST)
    return db.session.connection().execute(stmt).all()


def ready_page(category=None, q=None, limit=None, offset=0):
    """The ready videos of `category` (any letter case) whose title or description contain every
    word of `q` (as a word prefix, fulltext.is_prefix): title matches first, then newest; `limit`
    of them from `offset` (all when limit is None)."""
    terms = fulltext.words(q or "")
    if terms:
        return _search_page(category, terms, limit, offset)
    total = ready_total(category)
    rows = _list_rows(_ready(category), offset, limit, total)
    more = limit is not None and offset + len(rows) < total
    return Page(rows, total, offset + limit if more else None)


def _ready(category):
    conditions = [Video.status == READY]
    if category is not None:
        conditions.append(func.lower(Video.category) == category.lower())
    return conditions


def _list_rows(conditions, offset, limit, total):
    """Rows [offset, offset + limit) of the list, newest first (all from offset when limit is None).

    The page's ids come from an index-only scan started at the nearer end of the list (`total`
    rows, from catalogue_count), then its rows by primary key."""
    if limit is None:
        stmt = select(*LIST_COLUMNS).where(*conditions).order_by(*NEWEST_FIRST).offset(offset or None)
        return db.session.execute(stmt).all()
    if offset >= total:
        return []
    after = total - offset - limit  # rows after this page
    if after < offset:
        order, skip, take = OLDEST_FIRST, max(0, after), min(limit, total - offset)
    else:
        order, skip, take = NEWEST_FIRST, offset, limit
    ids = select(Video.id).where(*conditions).order_by(*order).offset(skip or None).limit(take).subquery()
    stmt = select(*LIST_COLUMNS).join(ids, ids.c.id == Video.id).order_by(*NEWEST_FIRST)
    return db.session.execute(stmt).all()


def _search_page(category, terms, limit, offset):
    """The search's page [offset, offset + limit) (every match from `offset` when limit is None)."""
    conditions = _ready(category)
    where, title = fulltext.matches(db.session.get_bind().dialect.name, terms)
    if limit is None:
        return _search_all(conditions, where, title, offset)
    # A page within the first SEARCH_WINDOW matches ranks them from the first; a deeper one skips
    # `offset` matches in the database (its cost grows with the offset: README, "Catalogue limits").
    start = 0 if offset + limit <= SEARCH_WINDOW else offset
    # One match more than the page needs: fewer means every match from `start` is in `ranked` (an
    # exact total without counting, unless there is none from a deep `start`).
    ranked = _ranked_ids(conditions, where, title, start, offset + limit + 1 - start)
    seen = start + len(ranked) if ranked else 0  # at least this many matches
    more = seen > offset + limit
    if not more and (ranked or not start):
        total, estimated = seen, False
    else:
        total, estimated = _estimate(conditions, where, category) if seen > EXACT_TOTAL else \
            _search_total(conditions, where, category)
        # An estimate is never fewer than the matches seen, nor more than a page past the end says.
        total = max(total, seen) if more else min(total, max(offset, EXACT_TOTAL + 1))
    rows = _rows_in_order(ranked[offset - start:offset - start + limit])
    return Page(rows, total, offset + limit if more else None, estimated)


def _search_all(conditions, where, title, offset):
    """Every match from `offset` (a search without `limit`: no paging, an exact total): the title
    matches newest first, then the others newest first, read whole."""
    def newest(*matching):
        stmt = select(*LIST_COLUMNS).where(*conditions, *matching).order_by(*NEWEST_FIRST)
        return db.session.execute(stmt).all()

    rows = newest(title) + newest(where, not_(title))
    return Page(rows[offset:], len(rows), None)


def _ranked_ids(conditions, where, title, offset, count):
    """The ids of matches [offset, offset + count) of the ranking: title matches newest first, then
    the others newest first. Two queries, each of at most offset + count rows, that the planner
    serves from the created_at index (many matches: it stops early) or from the full-text indexes
    (few matches); the second only when the title matches run out before the end (a word in every
    title never reads the rest). From a deep offset past every title match, the title matches are
    counted to know where the others start.
    """
    def newest(skip, limit, *matching):
        stmt = (select(Video.id).where(*conditions, *matching).order_by(*NEWEST_FIRST)
                .offset(skip or None).limit(limit))
        return db.session.execute(stmt).scalars().all()

    ids = newest(offset, count, title)
    if len(ids) < count:
        titles = offset + len(ids) if ids or not offset else db.session.execute(
            select(func.count()).select_from(Video).where(*conditions, title)).scalar_one()
        ids += newest(max(0, offset - titles), count - len(ids), where, not_(title))
    return ids


def _rows_in_order(ids):
    """The list rows of `ids`, in that order."""
    if not ids:
        return []
    found = {row.id: row for row in db.session.execute(select(*LIST_COLUMNS).where(Video.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def _search_total(conditions, where, category):
    """(total, estimated): the number of matches, counted up to EXACT_TOTAL + 1 only; beyond,
    an estimate on PostgreSQL (a full count elsewhere)."""
    capped = select(literal(1)).where(*conditions, where).limit(EXACT_TOTAL + 1).subquery()
    count = db.session.execute(select(func.count()).select_from(capped)).scalar_one()
    if count <= EXACT_TOTAL:
        return count, False
    return _estimate(conditions, where, category)


def _estimate(conditions, where, category):
    """(total, estimated) of a search with more than EXACT_TOTAL matches. On PostgreSQL, their
    share of a sample of the ready videos (of `category`) times their number: about SAMPLE_ROWS
    rows of the table (TABLESAMPLE SYSTEM, the same pages every time, so a search's total does not
    change from page to page), or, when too few of those are in the category, its SAMPLE_ROWS
    newest videos. Elsewhere (SQLite): all of them counted."""
    if db.session.get_bind().dialect.name != "postgresql":
        return db.session.execute(select(func.count()).select_from(Video).where(*conditions, where)).scalar_one(), False
    ready = ready_total(category)
    percent = min(100.0, 100.0 * SAMPLE_ROWS / max(1, ready_total()))
    filters = ["video.status = 'ready'"] + (["lower(video.category) = :sample_category"] if category else [])
    sampled = (select(func.count().filter(where), func.count())
               .select_from(text("video TABLESAMPLE SYSTEM (:sample_percent) REPEATABLE (0)"))
               .where(text(" AND ".join(filters))))
    params = {"sample_percent": percent, "sample_category": (category or "").lower()}
    matched, seen = db.session.execute(sampled, params).one()
    if seen < SAMPLE_ROWS // 10:
        newest = (select(case((where, 1), else_=0).label("hit")).where(*conditions).order_by(*NEWEST_FIRST)
                  .limit(SAMPLE_ROWS).subquery())
        matched, seen = db.session.execute(select(func.coalesce(func.sum(newest.c.hit), 0), func.count())).one()
    share = matched / seen if seen else 0
    return max(EXACT_TOTAL + 1, min(ready, round(share * ready))), True


def ready_total(category=None):
    """How many videos are ready (in `category`, any letter case, when given)."""
    stmt = select(func.coalesce(func.sum(CategoryCount.ready), 0))
    if category is not None:
        stmt = stmt.where(func.lower(CategoryCount.category) == category.lower())
    return int(db.session.execute(stmt).scalar_one())


def categories():
    """[(name, count)] of the categories that have ready videos, by name; spellings that differ
    only in letter case are one category, named by the first of them in binary order."""
    key = func.lower(CategoryCount.category)
    return [
        (name, int(count))
        for name, count in db.session.execute(
            select(func.min(CategoryCount.category), func.sum(CategoryCount.ready)).group_by(key).order_by(key)
        )
    ]
