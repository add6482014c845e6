"""Bazaar: an async users-and-items API on FastAPI and SQLAlchemy 2.0's asyncio ORM."""
