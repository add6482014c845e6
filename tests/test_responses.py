"""The JSON a list route writes: the model's JSON, with the model's checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from sqlalchemy import Row
from sqlalchemy.engine.result import result_tuple
from starlette.requests import Request

from bazaar.config import Settings
from bazaar.fields import MAX_ID
from bazaar.items.schemas import MAX_PRICE, ItemOut
from bazaar.responses import JSONRowsOf, absolute_url
from bazaar.users.schemas import UserOut

WHEN = datetime(2026, 11, 26, 17, 0, 0, 123456, tzinfo=UTC)


def _rows(*values: dict[str, object]) -> list[Row[Any]]:
    """SQLAlchemy rows holding `values`, as a query gives them."""
    if not values:
        return []
    keys = list(values[0])
    make = result_tuple(keys)
    return [make(tuple(row[key] for key in keys)) for row in values]


ITEMS = (
    {"id": 1, "name": "lamp", "price": 12.5, "owner_id": 7, "created_at": WHEN},
    {"id": 2, "name": "Zoë's 🌸 rug", "price": 0.0, "owner_id": 8, "created_at": WHEN},
)


def test_rows_are_written_as_the_model_writes_them() -> None:
    rows = _rows(*ITEMS)
    response = JSONRowsOf(ItemOut)(rows, headers={"Link": "<next>"})
    models = TypeAdapter(list[ItemOut])
    as_models = models.validate_python(rows, from_attributes=True)
    assert response.body == models.dump_json(as_models)
    assert [item["name"] for item in json.loads(bytes(response.body))] == ["lamp", "Zoë's 🌸 rug"]
    assert response.headers["link"] == "<next>"
    assert response.media_type == "application/json"


def test_a_row_that_does_not_fit_the_model_is_refused() -> None:
    user = {"id": 1, "name": "Ann", "email": "ann@example.com", "is_active": True}
    rows = _rows({**user, "is_admin": "perhaps", "created_at": WHEN})
    with pytest.raises(ValidationError):
        JSONRowsOf(UserOut)(rows)


def test_models_with_what_a_typed_dict_would_drop_are_refused() -> None:
    class Constrained(BaseModel):
        id: int = Field(ge=1)

    with pytest.raises(TypeError, match="Constrained"):
        JSONRowsOf(Constrained)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "id": st.integers(1, MAX_ID),
                "name": st.text(st.characters(codec="utf-8"), max_size=100),
                "price": st.floats(0, MAX_PRICE),
                "owner_id": st.integers(1, MAX_ID),
                "created_at": st.datetimes(timezones=st.just(UTC)),
            }
        ),
        max_size=5,
    )
)
def test_any_rows_are_written_exactly_as_the_model_writes_them(
    items: list[dict[str, object]],
) -> None:
    models = TypeAdapter(list[ItemOut])
    expected = models.dump_json(models.validate_python(items))
    assert JSONRowsOf(ItemOut)(_rows(*items)).body == expected


@pytest.mark.parametrize(
    ("public_url", "path", "root_path", "mounted", "expected"),
    [
        ("https://shop.example", "/items", "", False, "https://shop.example/items/3"),
        # Behind a proxy that strips a prefix (`--root-path /api`): the path includes it.
        ("https://shop.example", "/api/items", "/api", False, "https://shop.example/api/items/3"),
        # ...and a public URL that names the prefix itself is not given it twice.
        (
            "https://shop.example/api",
            "/api/items",
            "/api",
            False,
            "https://shop.example/api/items/3",
        ),
        # Mounted at /shop inside another app, which keeps its own root in app_root_path.
        ("http://10.0.0.1:8000", "/shop/items", "/shop", True, "http://10.0.0.1:8000/shop/items/3"),
    ],
)
def test_locations_start_with_the_public_url_whatever_the_host_header(
    public_url: str, path: str, root_path: str, mounted: bool, expected: str
) -> None:
    app = FastAPI()
    # Only what links need of the services a lifespan would build.
    app.state.services = SimpleNamespace(
        settings=Settings(public_url=public_url, secret_key="k" * 32)
    )
    scope: dict[str, Any] = {
        "type": "http",
        "app": app,
        "scheme": "http",
        "server": ("10.0.0.1", 8000),
        "path": path,
        "root_path": root_path,
        "query_string": b"page=2",
        "headers": [(b"host", b"evil.example:8080")],
    }
    if mounted:
        scope["app_root_path"] = ""
    request = Request(scope)
    assert absolute_url(request, "/items/3") == expected
    assert absolute_url(request, query="page=3") == expected.replace("/3", "?page=3")
