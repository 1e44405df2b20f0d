"""Where the process stage's fixed cost is: the stage cold, with and without its image work.

    python benchmarks/bench_stage_floor.py [--images 120] [--size 4000x3000] [--repeat 3]

Builds N JPEGs and a store as the ingest leaves it (``bench_process.build_root``), then, each
round, takes five measures, each in a fresh process (a cold JVM started as ``imgpipe run``
starts it: ``local_session`` + ``warm_up``, the class archive mapped):

- pool: the kernel in a 2-process pool, the baseline of the issue's target 1;
- stage: ``run_process`` as the local runner runs it (``LOCAL_PROCESS_SQL``);
- empty kernel: the same ``run_process`` with its ``mapInArrow`` function replaced by one that
  reads no image and returns null features: every job, plan and write of the stage, no decoding;
- all columns: the records flattened to the table's record columns, one ``mapInArrow`` that
  returns its input, written: no grouping, no join;
- minimal: two columns of the records through one such ``mapInArrow``, written: the least a
  Spark stage that hands the records to Python workers and writes a table can do.

Prints each one's wall time and the JVM's CPU seconds during it (less distorted by other load
than wall time), the medians, and the ratios: stage / pool (target 1 wants <= 2, i.e. >= 0.5x
the kernel), the empty-kernel stage / pool and / minimal. The stage's structure (its jobs,
plans and writes) costs what the empty kernel costs above the minimal stage.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from bench_process import PHOTO_SIZE, build_root, kernel_way, load, make_corpus, pool_rate  # noqa: E402

MEASURES = ("pool", "stage", "empty kernel", "all columns", "minimal")


def jvm_cpu(spark) -> float:
    """CPU seconds the driver JVM has used so far (user + system, from /proc)."""
    pid = spark._jvm.java.lang.ProcessHandle.current().pid()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def empty_features(df, root, config, decoded_column=None, features_prefix=None):
    """``with_features`` without the image work: null features, a thumbnail key per row
    (and, as the kernel does when asked, a marker that every row was decoded and each task's
    features cache file)."""
    from pyspark.sql import types as T

    # The kernel's own Spark -> Arrow types, its column builder (no pandas import) and its
    # cache writer.
    from imgpipe.process.kernel import (
        _ARROW_TYPES,
        arrow_column,
        processing_settings,
        write_features_part,
    )
    from imgpipe.store import open_store
    from imgpipe.table import feature_fields

    fields = feature_fields()
    names = [f.name for f in fields]
    types = [_ARROW_TYPES[type(f.dataType)] for f in fields]
    if decoded_column:
        fields = [*fields, T.StructField(decoded_column, T.IntegerType())]
        names.append(decoded_column)
        types.append(_ARROW_TYPES[T.IntegerType])

    def run(batches):
        import pyarrow as pa

        checksums = set()
        for batch in batches:
            checksums.update(batch.column("checksum").to_pylist())
            columns = [
                batch.column("checksum")
                if name == "thumbnail_key"
                else arrow_column([1] * batch.num_rows, arrow_type)
                if name == decoded_column
                else pa.nulls(batch.num_rows, arrow_type)
                for name, arrow_type in zip(names, types, strict=True)
            ]
            yield pa.RecordBatch.from_arrays(
                [*batch.columns, *columns], names=[*batch.schema.names, *names]
            )
        if features_prefix and checksums:
            no_features: dict[str, object] = {}
            contents = [(checksum, no_features) for checksum in sorted(checksums)]
            settings = processing_settings(config)
            write_features_part(open_store(root), features_prefix, contents, settings)

    return df.mapInArrow(run, T.StructType([*df.schema.fields, *fields]))


def measure(mode: str, source: Path) -> dict[str, float]:
    """One measure in this (fresh) process; the store is copied so each starts the same."""
    if mode == "pool":
        paths = sorted(str(p) for p in (source / "ingest").rglob("*.jpg"))
        rate = pool_rate(kernel_way, paths)
        return {"wall": len(paths) / rate}

    import imgpipe.process.stage as stage
    from imgpipe.config import PipelineConfig
    from imgpipe.process.kernel import processing_settings
    from imgpipe.process.manifest import inputs_fingerprint
    from imgpipe.spark import local_session, session_settings, warm_up
    from imgpipe.stages import LOCAL_PROCESS_SQL
    from imgpipe.store import open_store

    with tempfile.TemporaryDirectory(prefix="imgpipe-floor-") as tmp:
        root = Path(tmp) / "root"
        for folder in ("ingest", "metadata"):
            shutil.copytree(source / folder, root / folder)
        config = PipelineConfig()
        # Taken before the stage by the runner, outside its seconds.
        fingerprint = inputs_fingerprint(open_store(str(root)), processing_settings(config))
        spark = local_session()
        warm_up(spark)
        if mode == "empty kernel":
            stage.with_features = empty_features
        cpu, start = jvm_cpu(spark), time.perf_counter()
        with session_settings(spark, LOCAL_PROCESS_SQL):
            if mode in ("stage", "empty kernel"):
                stage.run_process(spark, str(root), config, fingerprint=fingerprint)
            else:
                _variant(mode, stage.read_records(spark, str(root / "metadata")), str(root))
        result = {"wall": time.perf_counter() - start, "jvm_cpu": jvm_cpu(spark) - cpu}
        spark.stop()
        return result


def _variant(mode: str, records, root: str) -> None:
    """The measures below the stage: fewer of its operators, the same records."""
    from imgpipe.process import transforms

    out = f"{root}/variant"
    if mode == "minimal":
        columns = records.select("key", "checksum")
        columns.mapInArrow(_same, columns.schema).write.parquet(out)
    elif mode == "all columns":
        flat = transforms.flatten_records(records)
        flat.mapInArrow(_same, flat.schema).write.parquet(out)
    else:
        raise ValueError(f"unknown measure {mode!r}")


def _same(batches):
    yield from batches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=120, help="12 MP photos (default 120)")
    parser.add_argument("--size", default="x".join(map(str, PHOTO_SIZE)), help="WxH")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (medians)")
    parser.add_argument("--measure", choices=MEASURES, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:  # one measure, in the fresh process the parent started
        print(json.dumps(measure(args.measure, args.root)))
        return 0

    width, height = (int(v) for v in args.size.split("x"))
    print(f"before: {load()}")
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in MEASURES}
    with tempfile.TemporaryDirectory(prefix="imgpipe-floor-") as tmp:
        root = Path(tmp) / "root"
        build_root(root, make_corpus(args.images, (width, height)))
        for round_ in range(1, args.repeat + 1):
            for name in MEASURES:
                command = [sys.executable, __file__, "--measure", name, "--root", str(root)]
                out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                result = json.loads(out.strip().splitlines()[-1])
                figures[name].append(result)
                cpu = f", JVM CPU {result['jvm_cpu']:.2f} s" if "jvm_cpu" in result else ""
                print(f"round {round_} {name:>12}: {result['wall']:6.2f} s{cpu} [{load()}]")

    def median(name: str, key: str = "wall") -> float:
        return statistics.median(r[key] for r in figures[name])

    for name in MEASURES:
        cpu = "" if name == "pool" else f", JVM CPU {median(name, 'jvm_cpu'):.2f} s"
        print(f"median {name:>12}: {median(name):6.2f} s{cpu}")
    pool, stage, empty, minimal = (median(n) for n in ("pool", "stage", "empty kernel", "minimal"))
    print(
        f"ratios: stage / pool {stage / pool:.2f} (target 1: <= 2), empty kernel / pool "
        f"{empty / pool:.2f}, empty kernel / minimal {empty / minimal:.1f}; the stage's structure "
        f"costs {empty - minimal:.2f} s above the minimal stage"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
