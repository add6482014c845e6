"""sqlite autoincrement

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

import bazaar.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("users", "items")


def upgrade() -> None:
    # Without AUTOINCREMENT SQLite hands out max(id) + 1, so deleting the newest row frees its
    # id for the next insert and an old link or ETag names a different row. PostgreSQL's
    # sequences never go back: nothing to do there.
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        # SQLite cannot add AUTOINCREMENT to a table: it is copied into a new one.
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        # Reflection does not see AUTOINCREMENT, so the copy is made without it; the primary
        # key, unnamed while AUTOINCREMENT kept it inline, gets 0001's name back.
        with op.batch_alter_table(
            table, recreate="always", naming_convention=bazaar.db.NAMING_CONVENTION
        ):
            pass
