"""The JSON a list route writes: the model's JSON, with the model's checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from sqlalchemy import create_engine, literal, select

from bazaar.items.schemas import ItemOut
from bazaar.responses import JSONRowsOf
from bazaar.users.schemas import UserOut

WHEN = datetime(2026, 11, 26, 17, 0, 0, 123456, tzinfo=UTC)


def _rows(*values: dict[str, object]) -> list:  # type: ignore[type-arg]
    """Real SQLAlchemy rows holding `values`."""
    engine = create_engine("sqlite://")
    with engine.connect() as connection:
        return [
            connection.execute(select(*(literal(v).label(k) for k, v in row.items()))).one()
            for row in values
        ]


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
    assert [item["name"] for item in json.loads(response.body)] == ["lamp", "Zoë's 🌸 rug"]
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
