"""Alembic migrations of the records store (run by :mod:`analytics.core.records`, no alembic.ini).

A new revision is a new file in ``versions/`` whose ``down_revision`` is the current head. Applied
revisions are frozen: change a table by adding a revision, never by editing one.
"""
