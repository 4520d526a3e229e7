"""`python -m tests.soak [--faults N] [--ids N] [--seed S] [--out FILE]`: the soak.

Each round changes the data (rows deleted from a target, documents added to the source), starts
`idsync run` on one target, and hits it with one fault at a random moment: SIGKILL or SIGTERM of
idsync, its sessions killed on the server, a link reset, cut after some bytes or gone silent,
a server restarted. Whatever that run's end, the table must hold no id twice and no id the
source lacks; then a plain run must end exact. Any breach stops the soak with exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.soak.rig import Rig, Side, build, table_state

HANG_S = 120.0  # no run may outlast this: socket timeouts are 3 s, retries bounded
FAULTS: dict[str, int] = {  # kind: weight
    "sigkill": 4, "sigterm": 2, "kill-sessions": 3, "reset-target": 3, "reset-source": 2,
    "cut-target": 3, "cut-source": 2, "silent-target": 1, "silent-source": 1,
    "restart-target": 1, "restart-source": 1,
}  # fmt: skip


@dataclass
class Tally:
    rounds: int = 0
    missed: int = 0  # rounds whose run had ended before the fault: not counted as faults
    hung: int = 0
    ids: int = 0
    runs: int = 0
    inserted: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    exits: Counter[str] = field(default_factory=Counter)
    recoveries: list[float] = field(default_factory=list)
    breaches: list[str] = field(default_factory=list)


def strike(rig: Rig, side: Side, kind: str, rng: random.Random) -> Callable[[], None]:
    """Start fault ``kind`` now; the function that ends it (a no-op for instant ones)."""
    link = rig.source_link if kind.endswith("-source") else side.link
    if kind.startswith("reset"):
        toxics = [link.add("reset_peer", "downstream", timeout=0)]
    elif kind.startswith("cut"):
        stream = rng.choice(["downstream", "upstream"])
        toxics = [link.add("limit_data", stream, bytes=rng.randrange(200, 60_000))]
    elif kind.startswith("silent"):
        toxics = [link.add("timeout", stream, timeout=0) for stream in ("downstream", "upstream")]
    else:
        if kind == "kill-sessions":
            side.kill_sessions()
        elif kind == "restart-target":
            side.server.stop()
            side.server.start()
        elif kind == "restart-source":
            rig.source.kill9()
            rig.source.start()
        return _nothing

    def heal() -> None:
        for toxic in toxics:
            link.remove(toxic)

    return heal


def _nothing() -> None:
    pass


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=HANG_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return -999, out, err
    return proc.returncode, out, err


def one_round(rig: Rig, tally: Tally, rng: random.Random) -> None:
    side = rig.side
    doomed = rng.sample(sorted(rig.known), rng.randrange(0, min(3000, len(rig.known))))
    if doomed:
        side.sql(f"DELETE FROM {side.table} WHERE cluster_id IN ("
                 + ", ".join(f"'{i}'" for i in doomed) + ")")  # fmt: skip
    rig.add_source(rng.randrange(0, 300))
    kind = rng.choices(list(FAULTS), weights=list(FAULTS.values()))[0]
    args = ["run", "--json", "--no-log-ids", "--batch-size", str(rng.choice([100, 500, 2000])),
            "--retries", "3", "--connect-timeout", "2", "--socket-timeout", "3"]  # fmt: skip
    proc = rig.idsync(side, *args)
    time.sleep(rng.uniform(0.2, 1.2))
    live = proc.poll() is None
    if kind in ("sigkill", "sigterm"):
        proc.send_signal(9 if kind == "sigkill" else 15)
        heal: Callable[[], None] = _nothing
    else:
        heal = strike(rig, side, kind, rng)
    time.sleep(rng.uniform(0.2, 0.8))
    heal()
    healed = time.monotonic()
    code, out, err = finish(proc)
    if live:
        tally.kinds[kind] += 1
        tally.exits[str(code)] += 1
    else:
        tally.missed += 1
    tally.runs += 1
    _count(tally, out)
    if code == -999:
        tally.hung += 1
        tally.breaches.append(f"round {tally.rounds}: {kind}: run hung past {HANG_S} s")
    _inspect(rig, side, tally, f"after {kind}")
    again = rig.idsync(side, "run", "--json", "--no-log-ids")
    code, out, err = finish(again)
    tally.runs += 1
    _count(tally, out)
    tally.recoveries.append(time.monotonic() - healed)
    if code != 0:
        tally.breaches.append(f"round {tally.rounds}: run after {kind} exit {code}: {err[-500:]}")
    _inspect(rig, side, tally, f"run after {kind}")
    if sorted(set(side.ids())) != sorted(rig.known):
        tally.breaches.append(f"round {tally.rounds}: not exact after {kind} on {side.kind}")
    tally.rounds += 1


def _count(tally: Tally, out: str) -> None:
    with contextlib.suppress(ValueError):  # killed before it printed
        tally.inserted += int(json.loads(out).get("inserted") or 0)


def _inspect(rig: Rig, side: Side, tally: Tally, when: str) -> None:
    twice, foreign = table_state(side, rig.known)
    if twice or foreign:
        where = f"round {tally.rounds} {when} on {side.kind}"
        tally.breaches.append(f"{where}: {twice} ids twice, {foreign} not in the source")


def report(tally: Tally, args: argparse.Namespace, wall: float, ids: int) -> str:
    rec = sorted(tally.recoveries)
    kinds = "\n".join(f"| {k} | {n} |" for k, n in sorted(tally.kinds.items()))
    exits = ", ".join(f"{c}: {n}" for c, n in sorted(tally.exits.items()))
    faults = sum(tally.kinds.values())
    return f"""# Soak: {faults} faults, each followed by a run that must end exact

`make soak` (`python -m tests.soak --faults {args.faults} --ids {args.ids} --seed {args.seed}`):
two lanes at once, each with a private FerretDB as its source and a private target (MariaDB in
one, PostgreSQL in the other; tables without a UNIQUE index, so that an id written twice would
show), each server behind a Toxiproxy link. Each round deletes up to 3,000 rows from the
target, adds up to 300 documents to the source, starts `idsync run` (`--retries 3
--connect-timeout 2 --socket-timeout 3`, batches of 100, 500 or 2,000) and strikes it once at a
random moment 0.2 to 1.2 s after its start; the fault lasts 0.2 to 0.8 s.
After it, the table is checked (no id twice, none the source lacks); then a plain run must exit
0 and leave the table exact.

| figure | value |
| --- | --- |
| faults (each striking a run still running) | {faults} |
| rounds whose run ended before its fault (not counted) | {tally.missed} |
| runs | {tally.runs} |
| source ids at the end | {ids:,} |
| ids inserted over all runs | {tally.inserted:,} |
| ids lost | 0 |
| ids duplicated | 0 |
| runs past {HANG_S:.0f} s (hung) | {tally.hung} |
| breaches | {len(tally.breaches)} |
| faulted runs' exit codes | {exits} |
| recovery (fault healed → exact), median | {statistics.median(rec) if rec else 0:.2f} s |
| recovery, slowest | {rec[-1] if rec else 0:.2f} s |
| wall | {wall / 60:.1f} min |

| fault | count |
| --- | --- |
{kinds}
"""


def lane(kind: str, seed: int, args: argparse.Namespace, tallies: list[Tally]) -> None:
    """Rounds on one target of its own until the lanes' faults add up to ``args.faults`` or
    any lane found a breach."""
    rng, tally = random.Random(seed), Tally()
    tallies.append(tally)
    rig = build(args.ids, kind)
    try:
        while sum(sum(t.kinds.values()) for t in tallies) < args.faults:
            if any(t.breaches for t in tallies):
                break
            one_round(rig, tally, rng)
            if tally.rounds % 50 == 0:
                print(f"{kind}: {tally.rounds} rounds, {dict(tally.kinds)}", file=sys.stderr,
                      flush=True)  # fmt: skip
    finally:
        tally.ids = len(rig.known)
        rig.close()


def merged(tallies: list[Tally]) -> Tally:
    total = Tally()
    for t in tallies:
        total.rounds += t.rounds
        total.missed += t.missed
        total.hung += t.hung
        total.runs += t.runs
        total.inserted += t.inserted
        total.ids += t.ids
        total.kinds.update(t.kinds)
        total.exits.update(t.exits)
        total.recoveries.extend(t.recoveries)
        total.breaches.extend(t.breaches)
    return total


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak")
    parser.add_argument("--faults", type=int, default=1000)
    parser.add_argument("--ids", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--out", type=Path, default=Path("bench/results/soak.md"))
    args = parser.parse_args()
    started, tallies = time.monotonic(), list[Tally]()
    lanes = [threading.Thread(target=lane, args=(kind, args.seed + n, args, tallies))
             for n, kind in enumerate(["mysql", "postgres"])]  # fmt: skip
    for thread in lanes:
        thread.start()
    for thread in lanes:
        thread.join()
    tally = merged(tallies)
    ids = tally.ids
    for breach in tally.breaches:
        print(breach, file=sys.stderr)
    if tally.breaches:
        return 1
    args.out.write_text(report(tally, args, time.monotonic() - started, ids))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
