"""What the items API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bazaar.fields import MAX_ID, InputModel, Name, PatchModel, SearchText
from bazaar.pagination import PageQuery

MAX_PRICE = 1e12

Price = Annotated[float, Field(ge=0, le=MAX_PRICE, allow_inf_nan=False)]

ItemSort = Literal["id", "-id", "price", "-price", "name", "-name", "created_at", "-created_at"]


class ItemCreate(InputModel):
    name: Name
    price: Price


class ItemUpdate(PatchModel):
    name: Name | None = None
    price: Price | None = None


class ItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    price: float
    owner_id: int
    created_at: datetime


class ItemQuery(BaseModel):
    """Filters and order for a list of items."""

    min_price: Price | None = Field(None, description="Only items costing at least this")
    max_price: Price | None = Field(None, description="Only items costing at most this")
    q: SearchText | None = Field(None, description="Case-insensitive substring of the name")
    sort: ItemSort = Field("id", description="Order; `-` for descending; ties broken by id")

    @field_validator("q", mode="before")
    @classmethod
    def _blank_is_no_filter(cls, value: object) -> object:
        # `?q=` is what a search form sends with its box left empty. Control characters are
        # still refused, as the docs say, blank or not.
        if isinstance(value, str) and not value.strip() and value.isprintable():
            return None
        return value


class ItemFilters(ItemQuery):
    owner_id: int | None = Field(None, ge=1, le=MAX_ID, description="Only this user's items")


class ItemListQuery(PageQuery, ItemFilters):
    """`GET /items`: which items, in which order, and which page of them."""


class UserItemsQuery(PageQuery, ItemQuery):
    """`GET /users/{user_id}/items`: which of the user's items, in which order, which page."""
