"""Alembic migrations of the zhujian database (a package so that setuptools ships the revision files)."""
