"""One way to page through any list: skip/limit, plus keyset cursors behind `Link: rel="next"`.

A cursor names the last row a page showed (its sort value and id) and is signed,
so that a client can neither forge one nor use one minted for another list or
sort. Following it seeks through an index on (sort key, id): page 10,000 costs
what page 1 does, and rows inserted behind the reader do not shift what it sees.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias
from urllib.parse import urlencode

import orjson
from fastapi import Request
from pydantic import BaseModel, Field
from sqlalchemy import Integer, Select, bindparam, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from bazaar.db.executor import AnyRow, Runs
from bazaar.errors import InvalidInput
from bazaar.fields import MAX_ID
from bazaar.responses import absolute_url
from bazaar.services import services

MAX_LIMIT = 1000
# Room for the longest cursor the server writes: a sort value of 100 characters of up to 4
# bytes each in UTF-8, the list's names and an id, base64-encoded (about 640), and a
# signature.
MAX_CURSOR_LENGTH = 1000

AnySelect: TypeAlias = Select[*tuple[Any, ...]]


@dataclass(frozen=True)
class Sort:
    """An order for a list: a column, its direction, and the name clients use for it."""

    name: str
    column: InstrumentedAttribute[Any]
    descending: bool = False


class Cursors:
    """Signs and reads cursors with a key derived from the application's secret."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"bazaar cursor\x00" + secret.encode()).digest()

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:16]

    def make(self, scope: str, sort: str, value: Any, last_id: int) -> str:
        if isinstance(value, datetime):
            value = value.isoformat()
        # UTF-8 as it is (orjson escapes nothing): a name of 100 emoji costs 400 bytes of
        # payload, where `json.dumps` wrote each as \ud83d\ude00: 1,200 bytes.
        payload = orjson.dumps([scope, sort, value, last_id])
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def read(self, token: str, *, scope: str, sort: Sort) -> tuple[Any, int]:
        """(sort value, id) of the row the cursor points after; InvalidInput if it is not ours."""
        try:
            encoded_payload, encoded_signature = token.split(".")
            payload = _unb64(encoded_payload)
            if not hmac.compare_digest(_unb64(encoded_signature), self._sign(payload)):
                raise ValueError("bad signature")
            cursor_scope, cursor_sort, value, last_id = orjson.loads(payload)
        except (ValueError, TypeError, binascii.Error) as exc:
            raise _bad_cursor(token, "is not a cursor this list gave out") from exc
        if cursor_scope != scope or cursor_sort != sort.name:
            raise _bad_cursor(token, "was made for another list or sort order")
        if sort.column.type.python_type is datetime:
            value = datetime.fromisoformat(value)
        return value, last_id


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _bad_cursor(token: str, why: str) -> InvalidInput:
    return InvalidInput(
        loc=("query", "cursor"),
        msg=f"The cursor {why}; start again from the first page",
        value=token,
    )


@dataclass(frozen=True)
class PageRequest:
    """A page of a list in `sort` order: `skip` rows then `limit`, from after the row
    (sort value, id) a cursor named, checked before any database work."""

    skip: int
    limit: int
    sort: Sort
    after: tuple[Any, int] | None
    cursors: Cursors

    @property
    def scope(self) -> str:
        """The list a cursor belongs to: its table."""
        return _scope(self.sort)


def _scope(sort: Sort) -> str:
    table: str = sort.column.class_.__tablename__
    return table


class PageQuery(BaseModel):
    """Which page of a list: `skip` rows then `limit` of them, or the `cursor` of a next link.

    A list route's query model adds these fields to its filters, so that FastAPI
    reads and validates the whole query string as one model, in one pass. Put it
    first among the model's bases: its fields then come after the filters.
    """

    skip: int = Field(0, ge=0, le=MAX_ID, description="Rows to skip")
    limit: int = Field(100, ge=1, le=MAX_LIMIT, description="Rows per page")
    cursor: str | None = Field(
        None,
        max_length=MAX_CURSOR_LENGTH,
        description='From a `Link: rel="next"` header: the next page',
    )


def page_request(query: PageQuery, request: Request, *, sort: Sort) -> PageRequest:
    """The page `query` asks for in `sort` order; InvalidInput for a cursor that is not
    one this list gave out for that order (before the request takes a connection)."""
    cursors = services(request).cursors
    after = None
    if query.cursor is not None:
        after = cursors.read(query.cursor, scope=_scope(sort), sort=sort)
    return PageRequest(query.skip, query.limit, sort, after, cursors)


@dataclass(frozen=True)
class Page:
    rows: Sequence[AnyRow]
    next_cursor: str | None

    def headers(self, request: Request) -> dict[str, str]:
        """A `Link` header naming the next page, when more rows may follow."""
        if self.next_cursor is None:
            return {}
        # The same query, from the new cursor on: it replaces the old one, and any skip.
        query = [
            (name, value)
            for name, value in request.query_params.multi_items()
            if name != "skip" and name != "cursor"
        ]
        query.append(("cursor", self.next_cursor))
        return {"Link": f'<{absolute_url(request, query=urlencode(query))}>; rel="next"'}


def paginate(
    connection: Runs,
    statement: AnySelect,
    params: Mapping[str, Any],
    *,
    page: PageRequest,
    id_column: InstrumentedAttribute[int],
) -> Page:
    """One page of `statement`'s rows (which include the sort column) in the page's order.

    `statement` binds its values by name, given in `params`, and is built once
    per shape: the page statements made from it are kept, so that a request
    runs SQL that SQLAlchemy has compiled and described already.
    """
    values = {**params, "page_skip": page.skip, "page_limit": page.limit + 1}
    if page.after is not None:
        values["page_after_value"], values["page_after_id"] = page.after
    sort = page.sort
    paged = _page_statement(statement, sort, id_column, after=page.after is not None)
    rows = connection.execute(paged, values).all()
    if len(rows) <= page.limit:
        return Page(rows, None)
    rows = rows[: page.limit]
    last = rows[-1]
    next_cursor = page.cursors.make(page.scope, sort.name, getattr(last, sort.column.key), last.id)
    return Page(rows, next_cursor)


# Room for every shape (items: 16 filter sets, 8 sorts, with or without a cursor), but
# bounded: a caller that built its statement per request must not make this grow.
@functools.lru_cache(maxsize=512)
def _page_statement(
    statement: AnySelect, sort: Sort, id_column: InstrumentedAttribute[int], *, after: bool
) -> AnySelect:
    """`statement` in `sort` order, from `page_skip` for `page_limit` rows; when `after`,
    only rows past the cursor's (`page_after_value`, `page_after_id`)."""
    key, row_id = sort.column, id_column
    same_key = key is row_id
    if after:
        last_id = bindparam("page_after_id", type_=row_id.type)
        if same_key:
            statement = statement.where(row_id < last_id if sort.descending else row_id > last_id)
        else:
            left = tuple_(key, row_id)
            right = tuple_(bindparam("page_after_value", type_=key.type), last_id)
            statement = statement.where(left < right if sort.descending else left > right)
    order = [key] if same_key else [key, row_id]
    statement = statement.order_by(*(c.desc() if sort.descending else c.asc() for c in order))
    skip, limit = bindparam("page_skip", type_=Integer), bindparam("page_limit", type_=Integer)
    return statement.offset(skip).limit(limit)
