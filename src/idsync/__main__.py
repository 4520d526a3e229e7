"""``python -m idsync``: the same as the ``idsync`` command."""

from idsync.entry import main

main()
