"""Run one command and write what that process cost (wall, CPU, peak RSS) as JSON to a file.

Linux carries a process's peak RSS across fork and exec: a command started straight from the
benchmark (a Python process of 60 MB and more) would report at least the benchmark's size. Started
from this small parent (``python -S``, about 9 MB), the peak is the command's own. ``os.wait4``
gives that one child's user and system CPU.

Usage: ``python -S bench/spawn.py REPORT.json COMMAND [ARG...]`` (standard streams pass through)
"""

import json
import os
import sys
import time


def main() -> None:
    report, argv = sys.argv[1], sys.argv[2:]
    started_at = time.time()
    begun = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _pid, status, usage = os.wait4(pid, 0)
    figures = {
        "wall_s": time.perf_counter() - begun,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "max_rss_kb": usage.ru_maxrss,
        "returncode": os.waitstatus_to_exitcode(status),
        "started_at": started_at,
    }
    with open(report, "w") as out:
        json.dump(figures, out)


if __name__ == "__main__":
    main()
