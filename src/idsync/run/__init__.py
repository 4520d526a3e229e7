"""`run`: one pass that inserts every missing id, with retries, a report and a history row.

:mod:`sync` is the entry; :mod:`passes` streams the source through the diff into the writer;
:mod:`readahead` reads the source ahead on a thread; :mod:`report` is its report.
"""
