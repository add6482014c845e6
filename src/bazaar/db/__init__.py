"""Bazaar's database layer: two paths to the data, each in a module of its own.

- `base`: the declarative base and the column types models share (no FastAPI here).
- `engine`: the engine per dialect, its pool events, and the session factories.
- `gate`: the first-come, first-served gate in front of the pool.
- `executor`: the fast path, for reads and one-statement writes.
- `unit_of_work`: the ORM's unit of work, one session per request (a FastAPI dependency).
"""

# Named by the first migrations, which reach them as `bazaar.db.UTCDateTime` and so on.
from bazaar.db.base import NAMING_CONVENTION, UTCDateTime, utcnow

__all__ = ["NAMING_CONVENTION", "UTCDateTime", "utcnow"]
