"""Bazaar: an async users-and-items API on FastAPI and SQLAlchemy 2.0's asyncio ORM."""

from importlib.metadata import PackageNotFoundError, version

# The distribution's name: `bazaar` on PyPI is an unrelated project. The command and the
# import package are `bazaar` all the same.
DISTRIBUTION = "bazaar-api"

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
