"""Alembic revision files (Alembic skips this file)."""
