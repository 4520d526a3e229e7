"""The PostgreSQL side, behind the same :class:`~idsync.target.Target` protocol as MySQL's.

The only package that imports ``psycopg``. Being built (the PostgreSQL issue): the target is
complete for inserting and reading ids; the CLI does not select it yet.
"""
