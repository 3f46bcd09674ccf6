"""The catalogue (API.md, "Catalogue"): ready videos filtered by category and searched by words,
one page at a time, and the categories that have ready videos.

Everything is done by the database: the search by its index (videoflix.videos.models.fulltext), the
order and the page by ORDER BY ... LIMIT/OFFSET. The totals of the unfiltered and category lists,
and the categories, come from the counts its triggers keep (videoflix.videos.models.category_counts): a few rows
at any table size. A search's total is a COUNT of its matches.
"""
from dataclasses import dataclass

from sqlalchemy import desc, func, select

from videoflix.extensions import db
from videoflix.videos.models import READY, CategoryCount, Video, fulltext

# The six list fields' columns, in schemas.list_items' order.
LIST_COLUMNS = (Video.id, Video.created_at, Video.title, Video.description, Video.thumbnail, Video.category)
NEWEST_FIRST = (Video.created_at.desc(), Video.id.desc())


@dataclass
class Page:
    rows: list
    total: int
    # The offset of the next page, None when this one is the last.
    next_offset: int | None


def all_ready_rows():
    """Every ready video's list columns, newest first (the unpaged list without parameters). Plain
    rows through the session's connection: the ORM's result handling would cost as much again."""
    stmt = select(*LIST_COLUMNS).where(Video.status == READY).order_by(*NEWEST_FIRST)
    return db.session.connection().execute(stmt).all()


def ready_page(category=None, q=None, limit=None, offset=0):
    """The ready videos of `category` (any letter case) whose title or description contain every
    word of `q` as a word prefix (title matches first, then newest); `limit` of them from
    `offset` (all when limit is None)."""
    conditions = [Video.status == READY]
    order = list(NEWEST_FIRST)
    if category is not None:
        conditions.append(func.lower(Video.category) == category.lower())
    terms = fulltext.words(q or "")
    if terms:
        where, title_first = fulltext.matches(db.session.get_bind().dialect.name, terms)
        conditions.append(where)
        order.insert(0, desc(title_first))
    stmt = select(*LIST_COLUMNS).where(*conditions).order_by(*order).offset(offset or None)
    rows = db.session.execute(stmt.limit(limit) if limit is not None else stmt).all()
    if limit is None or (len(rows) < limit and (rows or not offset)):
        total = offset + len(rows)  # this page is the last one: no need to count
    elif terms:
        total = db.session.execute(select(func.count()).select_from(Video).where(*conditions)).scalar_one()
    else:
        total = ready_total(category)
    more = limit is not None and offset + len(rows) < total
    return Page(rows, total, offset + limit if more else None)


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
