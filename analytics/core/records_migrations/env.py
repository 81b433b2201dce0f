"""Alembic environment of the records store: online only, on the connection the store hands over.

:func:`analytics.core.records.upgrade_to_head` opens the write transaction (and takes the migration lock),
then passes its connection in ``config.attributes["connection"]``; the migrations run inside that
one transaction, so a failed upgrade leaves the database as it was on both backends.
"""

from alembic import context

if context.is_offline_mode():
    raise RuntimeError("the records store's migrations run online only (python -m analytics records upgrade)")

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the records migrations through analytics.core.records.upgrade_to_head, which passes the connection")

context.configure(connection=connection, target_metadata=None, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
