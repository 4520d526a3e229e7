"""``python -m idsync``: the same as the ``idsync`` command."""

from idsync.cli import main

main()
