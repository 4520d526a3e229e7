"""What a benchmark run measures: the default plan, or the grid that the flags select."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from bench.contenders import CONTENDERS, KNOWN, OPTIONAL
from bench.scenarios import SCENARIOS

ALL = "".join(SCENARIOS)


@dataclass(frozen=True)
class Block:
    """Every source x size x scenario x contender of one document shape."""

    sources: tuple[str, ...]
    shape: str
    sizes: tuple[int, ...]
    scenarios: str = ALL
    contenders: tuple[str, ...] = CONTENDERS

    def describe(self) -> str:
        return (
            f"{'+'.join(self.sources)}: {self.shape} x {','.join(map(str, self.sizes))}, "
            f"scenarios {self.scenarios}, {'+'.join(self.contenders)}"
        )


# `make bench`: about 45 minutes on 2 cores the first time (FerretDB loads 111,000 clusters once
# and keeps them), a little less after. FerretDB reads 2 KB documents at ~1,000/s whatever the
# client does, so at 100,000 it runs the everyday scenario (b) only: the other three would take
# 27 more runs of 100-150 s (about an hour) to say again what (b) says. `--sizes 1m` selects a
# million clusters (hours on FerretDB; mongo-java-server would need a ~55 GB heap: skipped, noted).
DEFAULT_PLAN = (
    Block(("mongo-java",), "clusters", (1_000, 10_000, 100_000)),
    Block(("ferretdb",), "clusters", (1_000, 10_000)),
    Block(("ferretdb",), "clusters", (100_000,), "b"),
    # Peak RSS up to a million ids: {_id}-only documents (a million 2 KB clusters fit neither
    # mongo-java-server's memory nor FerretDB's scan rate); scenario (a) inserts every id,
    # (c) holds every id on both sides.
    Block(("mongo-java",), "ids", (1_000, 10_000, 100_000, 1_000_000), "ac", ("idsync", "floor")),
)


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "").replace(",", "")
    for suffix, unit in (("k", 1_000), ("m", 1_000_000)):
        if text.endswith(suffix):
            return int(float(text[:-1]) * unit)
    return int(text)


@dataclass(frozen=True)
class Plan:
    blocks: tuple[Block, ...]
    repeat: int
    seed: int
    out: Path
    merge: bool
    profile: bool
    settle_s: float


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Measure idsync against the job it replaces and against the servers' floor. "
        "Without --sources/--sizes/--scenarios/--contenders/--docs: the default plan.",
    )
    add = parser.add_argument
    add("--sources", help="ferretdb, mongo-java, NAME=mongodb://... (default: both test servers)")
    add("--sizes", help="documents per dataset, e.g. 10k,100k,1m (default 10k,100k)")
    add(
        "--scenarios",
        # argparse expands %-formats in help: the scenarios' "1%" must be escaped.
        help=f"letters of {ALL}: "
        + "; ".join(f"{k}: {v}" for k, v in SCENARIOS.items()).replace("%", "%%"),
    )
    add(
        "--contenders",
        help=f"of {','.join(KNOWN)} (default: {','.join(CONTENDERS)}; {','.join(OPTIONAL)}:"
        " the same job written with dlt, bench/dlt_job.py)",
    )
    add("--docs", choices=("clusters", "ids"), help="2 KB clusters (default) or {_id} only")
    add("--repeat", type=int, default=3, help="timed runs per cell; the median is shown (3)")
    add("--seed", type=int, default=7, help="data seed (7)")
    add("--out", type=Path, default=Path("bench/out"), help="results directory (bench/out)")
    add("--merge", action="store_true", help="keep the other cells of OUT/results.json")
    add("--profile", action="store_true", help="also profile one idsync run per cell")
    add(
        "--settle",
        type=float,
        help="seconds to wait at most, before each timed run, for the machine to be idle"
        " (default 10; 0 with --repeat 1, a quick check rather than a measurement)",
    )
    return parser


def parse(argv: list[str] | None = None) -> Plan:
    args = _parser().parse_args(argv)
    chosen = (args.sources, args.sizes, args.scenarios, args.contenders, args.docs)
    if any(value is not None for value in chosen):
        contenders = tuple((args.contenders or ",".join(CONTENDERS)).split(","))
        scenarios = args.scenarios or ALL
        if bad := [c for c in contenders if c not in KNOWN] + [
            s for s in scenarios if s not in SCENARIOS
        ]:
            raise SystemExit(f"unknown contender or scenario: {', '.join(bad)}")
        block = Block(
            sources=tuple((args.sources or "mongo-java,ferretdb").split(",")),
            shape=args.docs or "clusters",
            sizes=tuple(sorted(parse_size(s) for s in (args.sizes or "10k,100k").split(","))),
            scenarios=scenarios,
            contenders=contenders,
        )
        blocks: tuple[Block, ...] = (block,)
    else:
        blocks = DEFAULT_PLAN
    if args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    settle = args.settle if args.settle is not None else (0.0 if args.repeat == 1 else 10.0)
    return Plan(blocks, args.repeat, args.seed, args.out, args.merge, args.profile, settle)
