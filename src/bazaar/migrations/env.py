"""Alembic's environment: the work is done in `bazaar.migrations.runner`."""

from bazaar.migrations.runner import run

run()
