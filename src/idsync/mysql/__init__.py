"""The MySQL side: the target column, its catalog, inserts, and the tables idsync owns.

The only package that imports ``MySQLdb``.
"""
