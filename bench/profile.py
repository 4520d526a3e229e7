"""Profile one ``idsync`` command in-process with pyinstrument; write the text profile to a file.

The command runs exactly as the CLI runs it (argument parsing, logging, the sync, the report),
except that its last step, ``os._exit`` (which skips the interpreter's exit so that pymongo's
monitor threads are not waited for), is turned into ``SystemExit`` until the profile is written.

Usage: ``python -m bench.profile OUT.txt run --json`` (the URLs from the environment, as for idsync)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn


def _deferred_exit(code: int) -> NoReturn:
    raise SystemExit(code)


def main() -> None:
    from pyinstrument import Profiler

    from idsync.cli import main as idsync_main

    out, argv = Path(sys.argv[1]), sys.argv[2:]
    really_exit = os._exit
    setattr(os, "_exit", _deferred_exit)  # noqa: B010 (mypy rejects assigning to os._exit)
    sys.argv = ["idsync", *argv]
    profiler = Profiler(interval=0.001)
    code: object = 0
    profiler.start()
    try:
        idsync_main()
    except SystemExit as exc:
        code = exc.code
    profiler.stop()
    out.write_text(profiler.output_text(unicode=True, color=False))
    really_exit(code if isinstance(code, int) else 1)


if __name__ == "__main__":
    main()
