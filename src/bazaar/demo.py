"""`bazaar demo-data`: realistic fake users and items, inserted in bulk."""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from bazaar.config import Settings
from bazaar.db.engine import create_engine
from bazaar.items.models import Item
from bazaar.security import Passwords
from bazaar.users.models import User

DEMO_PASSWORD = "demo-password"  # noqa: S105 - documented, for fake accounts only
# The first demo user's email, documented in the README, so a login can be tried at once;
# the others are random, so that demo data can be added again and again.
DEMO_EMAIL = "demo@example.com"
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


@dataclass(frozen=True)
class Filled:
    seconds: float
    # One or two emails of demo users to log in as, with DEMO_PASSWORD.
    logins: list[str]


async def fill(settings: Settings, *, users: int, items: int, seed: int | None = None) -> Filled:
    """Insert `users` users (password `demo-password`) and `items` items."""
    if users < 1 and items > 0:
        raise SystemExit("bazaar: items need at least one user to own them")
    rng = random.Random(seed)  # noqa: S311 - fake data, not secrets
    started = time.perf_counter()
    # One hash for every demo account: hashing each would take minutes.
    hashed = await Passwords().hash(DEMO_PASSWORD)
    tag = secrets.token_hex(3)
    engine = create_engine(settings)
    logins: list[str] = []
    try:
        async with engine.begin() as connection:
            owners: list[int] = []
            taken = await connection.scalar(select(User.id).where(User.email == DEMO_EMAIL))
            for start in range(0, users, BATCH):
                rows = _users(rng, min(BATCH, users - start), hashed, f"{tag}-{start}-")
                if start == 0:
                    if taken is None:  # a second run leaves the first run's demo user be
                        rows[0]["email"] = DEMO_EMAIL
                    others = [row["email"] for row in rows if row["email"] != DEMO_EMAIL]
                    logins = [DEMO_EMAIL, *others[:1]]
                result = await connection.execute(insert(User).returning(User.id), rows)
                owners.extend(result.scalars())
            for start in range(0, items, BATCH):
                await connection.execute(
                    insert(Item), _items(rng, min(BATCH, items - start), owners)
                )
    finally:
        await engine.dispose()
    return Filled(seconds=time.perf_counter() - started, logins=logins)
