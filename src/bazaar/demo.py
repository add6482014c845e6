"""`bazaar demo-data`: realistic fake users and items, inserted in bulk."""

from __future__ import annotations

import random
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from bazaar.config import Settings
from bazaar.db.engine import create_engine
from bazaar.items.models import Item
from bazaar.security import Passwords
from bazaar.users.models import User

DEMO_PASSWORD = "demo-password"  # noqa: S105 - documented, for fake accounts only
BATCH = 5000

FIRST = [
    "Ada",
    "Alan",
    "Amara",
    "Ana",
    "Aroha",
    "Bea",
    "Carlos",
    "Chen",
    "Dara",
    "Elif",
    "Emil",
    "Farah",
    "Grace",
    "Hana",
    "Ines",
    "Ivan",
    "Jonas",
    "Kai",
    "Lena",
    "Luca",
    "Maya",
    "Mei",
    "Nia",
    "Noah",
    "Olu",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Sofia",
    "Tariq",
    "Uma",
    "Vera",
    "Wei",
    "Yara",
    "Yusuf",
    "Zoe",
]
LAST = [
    "Adeyemi",
    "Bauer",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Nakamura",
    "Novak",
    "Okafor",
    "Petrov",
    "Quispe",
    "Rossi",
    "Silva",
    "Tanaka",
    "Ueda",
    "Varga",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zhang",
]
ADJECTIVES = [
    "vintage",
    "handmade",
    "sturdy",
    "compact",
    "antique",
    "rustic",
    "modern",
    "cozy",
    "bright",
    "quiet",
    "classic",
    "oak",
    "brass",
    "ceramic",
    "woollen",
    "leather",
    "foldable",
    "portable",
    "restored",
    "signed",
    "rare",
]
THINGS = [
    "lamp",
    "chair",
    "bicycle",
    "teapot",
    "bookshelf",
    "guitar",
    "camera",
    "desk",
    "rug",
    "mirror",
    "clock",
    "kettle",
    "backpack",
    "record-player",
    "typewriter",
    "vase",
    "blanket",
    "skateboard",
    "telescope",
    "plant-pot",
]


def _users(rng: random.Random, count: int, hashed: str, tag: str) -> list[dict[str, Any]]:
    rows = []
    for n in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        rows.append(
            {
                "name": f"{first} {last}",
                "email": f"{first}.{last}.{tag}{n}@example.com".lower(),
                "hashed_password": hashed,
                # Fake accounts at example.com: nobody could verify them by mail.
                "is_verified": True,
            }
        )
    return rows


def _items(rng: random.Random, count: int, owners: list[int]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "name": f"{rng.choice(ADJECTIVES).capitalize()} {rng.choice(THINGS)}",
            "price": round(rng.lognormvariate(3.5, 1.2), 2),
            "owner_id": rng.choice(owners),
            "created_at": now - timedelta(seconds=rng.uniform(0, 365 * 24 * 3600)),
            "version": 1,
        }
        for _ in range(count)
    ]


async def fill(settings: Settings, *, users: int, items: int, seed: int | None = None) -> float:
    """Insert `users` users (password `demo-password`) and `items` items; the seconds it took."""
    if users < 1 and items > 0:
        raise SystemExit("bazaar: items need at least one user to own them")
    rng = random.Random(seed)  # noqa: S311 - fake data, not secrets
    started = time.perf_counter()
    # One hash for every demo account: hashing each would take minutes.
    hashed = await Passwords().hash(DEMO_PASSWORD)
    tag = secrets.token_hex(3)
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            owners: list[int] = []
            for start in range(0, users, BATCH):
                rows = _users(rng, min(BATCH, users - start), hashed, f"{tag}-{start}-")
                result = await connection.execute(insert(User).returning(User.id), rows)
                owners.extend(result.scalars())
            for start in range(0, items, BATCH):
                await connection.execute(
                    insert(Item), _items(rng, min(BATCH, items - start), owners)
                )
    finally:
        await engine.dispose()
    return time.perf_counter() - started
