"""Metadata store: SQLAlchemy models, Alembic migrations, engine and transactions."""
