"""Time the analyze stage on an existing run's output: the first round in a fresh JVM, then warm.

    python benchmarks/bench_analyze.py OUT [--rounds 3]

OUT is an ``imgpipe run ... --out OUT`` directory (it needs ``processed/images``). Each round
runs every analysis through ``run_analyze`` in one local SparkSession and writes its tables
under ``reports/bench-analyze-N/``; it prints its seconds, the Spark jobs and stages it ran
(which, unlike seconds, do not depend on the machine's load) and the load average. Set
``IMGPIPE_JVM_OPTIONS`` to compare JIT settings.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# Run as a script from a checkout: this checkout's packages, not an installed copy's.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.analyze import ANALYSES, run_analyze
from imgpipe.config import PipelineConfig
from imgpipe.spark import local_session


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="an imgpipe run's --out directory")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not (args.out / "processed" / "images").is_dir():
        parser.error(f"no image table under {args.out}: run `imgpipe run DIR --out {args.out}`")
    started = time.perf_counter()
    spark = local_session(cores="2")
    print(f"session: {time.perf_counter() - started:.2f} s", flush=True)
    options = os.environ.get("IMGPIPE_JVM_OPTIONS", "(default)")
    print(f"load average: {os.getloadavg()[0]:.2f}; JVM options: {options!r}")
    tracker = spark.sparkContext.statusTracker()
    for n in range(args.rounds):
        # Jobs outside any job group (query threads inherit none): the ones this round starts.
        before = set(tracker.getJobIdsForGroup(None))
        started = time.perf_counter()
        run_analyze(spark, str(args.out.resolve()), f"bench-analyze-{n}", PipelineConfig())
        seconds = time.perf_counter() - started
        jobs = set(tracker.getJobIdsForGroup(None)) - before
        stages = sum(len(info.stageIds) for job in jobs if (info := tracker.getJobInfo(job)))
        label = "cold" if n == 0 else "warm"
        print(
            f"round {n} ({label}): {seconds:.2f} s, {len(jobs)} Spark jobs ({stages} stages)"
            f" for {len(ANALYSES)} analyses [load {os.getloadavg()[0]:.2f}]",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
