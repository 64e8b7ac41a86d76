#!/usr/bin/env python3
"""Reduce scrapemeter Parquet partials on Spark: the same violations.csv and clients.csv
as one `scrapemeter reduce` (or `scan`) on one machine.

There is no second implementation of the billing rules here. Spark moves files; the
scrapemeter binary does all the arithmetic:

1. List the partial files (`binaryFile`, any Hadoop path or URI: file:, hdfs:, s3a:, ...)
   and take each one's bucket from its `bucket=NNN` folder.
2. `repartition(n, "bucket")`: every file of one bucket (one per map shard) goes to the
   same task. All of a client's rows are in one bucket, and billing is per client, so
   each task holds complete clients.
3. In each task (`mapInArrow`): write the task's files to a local temporary folder and
   run `scrapemeter reduce` on it, once per policy. The binary checks the settings
   digests and input manifests of those files, sums the rows and bills.
4. On the driver: write each task's violations.csv, clients.csv and partials.json to
   `OUT/.parts/`, and `scrapemeter reduce --merge` them: it checks the digests and
   manifests across tasks and sorts the rows as `scan` does.

Usage:
    spark-submit scripts/spark_reduce.py PARTIALS --out DIR \\
        [--scrapemeter PATH] [--partitions N] [-- REDUCE_FLAGS...]
    spark-submit scripts/spark_reduce.py PARTIALS --out DIR \\
        --policy 't5k=--threshold 5000' --policy 'cal=--threshold 5000 --mode calendar'

With `--policy NAME=FLAGS` (repeatable) every policy is computed in the same job and
written to DIR/NAME; otherwise the flags after `--` are used and DIR gets the reports.
Works with Spark 3.5 and 4.x (needs pyarrow, and pandas for mapInArrow, on the executors).
"""

import argparse
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time

from pyspark import SparkFiles
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

BINARY_NAME = "scrapemeter"
REPORTS = ("violations.csv", "clients.csv", "partials.json")


def parse_args(argv):
    reduce_flags = []
    if "--" in argv:
        i = argv.index("--")
        argv, reduce_flags = argv[:i], argv[i + 1 :]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("partials", help="folder or URI holding bucket=NNN/part-*.parquet")
    p.add_argument("--out", required=True, help="local folder for the reports (on the driver)")
    p.add_argument(
        "--scrapemeter",
        default=shutil.which("scrapemeter") or "target/release/scrapemeter",
        help="the scrapemeter binary on the driver; shipped to the executors",
    )
    p.add_argument("--partitions", type=int, default=0, help="tasks (default: the default parallelism)")
    p.add_argument("--policy", action="append", default=[], metavar="NAME=FLAGS")
    args = p.parse_args(argv)
    policies = []
    for spec in args.policy:
        name, _, flags = spec.partition("=")
        if not name or "/" in name or name.startswith("."):
            p.error(f"--policy {spec!r}: use NAME=FLAGS")
        policies.append((name, shlex.split(flags)))
    if not policies:
        policies = [("", reduce_flags)]
    elif reduce_flags:
        p.error("give reduce flags either after -- or in --policy, not both")
    return args, policies


def executor_binary():
    """The binary shipped with addFile, made executable (addFile may drop the bit)."""
    path = SparkFiles.get(BINARY_NAME)
    mode = os.stat(path).st_mode
    if not mode & stat.S_IXUSR:
        try:
            os.chmod(path, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        except PermissionError:
            copy = os.path.join(tempfile.gettempdir(), f"{BINARY_NAME}-{os.getpid()}")
            shutil.copy(path, copy)
            os.chmod(copy, 0o755)
            path = copy
    return path


def reduce_task(policies):
    """The per-task function of mapInArrow: files of some buckets in, reports out."""
    import pyarrow as pa

    out_schema = pa.schema(
        [("policy", pa.string()), ("task", pa.string()), ("name", pa.string()), ("content", pa.string())]
    )

    def run(batches):
        work = tempfile.mkdtemp(prefix="scrapemeter-reduce-")
        try:
            n = 0
            task = None
            originals = {}
            for batch in batches:
                cols = batch.to_pydict()
                for path, content, bucket in zip(cols["path"], cols["content"], cols["bucket"]):
                    # Keep bucket=NNN/…part-<shard>.parquet, so errors name the shard.
                    folder = os.path.join(work, "in", f"bucket={bucket}")
                    os.makedirs(folder, exist_ok=True)
                    # Numbered, so that two copies of one partial both reach reduce (which
                    # refuses them) instead of one silently replacing the other.
                    name = f"{n:06d}-{os.path.basename(path)}"
                    with open(os.path.join(folder, name), "wb") as f:
                        f.write(content)
                    originals[os.path.join(folder, name)] = path
                    n += 1
                    task = task or f"b{bucket}"
            if n == 0:
                return
            binary = executor_binary()
            for name, flags in policies:
                out = os.path.join(work, "out", name or "_")
                cmd = [binary, "reduce", os.path.join(work, "in"), "--out", out, "--quiet", *flags]
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode != 0:
                    err = done.stderr.strip()
                    for local, original in originals.items():  # name the real files
                        err = err.replace(local, original)
                    raise RuntimeError(f"scrapemeter reduce failed with status {done.returncode}: {err}")
                rows = []
                for report in REPORTS:
                    with open(os.path.join(out, report), encoding="utf-8") as f:
                        rows.append((name, task, report, f.read()))
                yield pa.RecordBatch.from_pylist(
                    [dict(zip(out_schema.names, r)) for r in rows], schema=out_schema
                )
        finally:
            shutil.rmtree(work, ignore_errors=True)

    return run


def main(argv):
    args, policies = parse_args(argv)
    binary = os.path.abspath(args.scrapemeter)
    if not os.access(binary, os.X_OK):
        sys.exit(f"spark_reduce: {binary} is not an executable scrapemeter binary (--scrapemeter)")
    spark = (
        SparkSession.builder.appName("scrapemeter-reduce")
        # A few thousand bucket folders are listed faster by the driver than by a job.
        .config("spark.sql.sources.parallelPartitionDiscovery.threshold", "4096")
        .getOrCreate()
    )
    if os.path.basename(binary) != BINARY_NAME:
        # Executors look the binary up by name: ship it under the name they expect.
        shipped = os.path.join(tempfile.mkdtemp(prefix="scrapemeter-bin-"), BINARY_NAME)
        shutil.copy(binary, shipped)
        os.chmod(shipped, 0o755)
        binary = shipped
    spark.sparkContext.addFile(binary)
    started = time.monotonic()

    files = (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", "part-*.parquet")
        .load(args.partials)
        .select(
            "path",
            "content",
            F.regexp_extract("path", r"/bucket=([0-9]+)/[^/]*$", 1).alias("bucket"),
        )
    )
    partitions = args.partitions or spark.sparkContext.defaultParallelism
    results = (
        files.repartition(partitions, "bucket")
        .mapInArrow(reduce_task(policies), "policy string, task string, name string, content string")
        .collect()
    )
    if not results:
        sys.exit(f"spark_reduce: no partial files (bucket=NNN/part-*.parquet) under {args.partials}")

    # Each task's reports into OUT/.parts/<policy>/<task>/, then one merge per policy.
    parts_root = os.path.join(args.out, ".parts")
    shutil.rmtree(parts_root, ignore_errors=True)
    for r in results:
        folder = os.path.join(parts_root, r["policy"] or "_", r["task"])
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, r["name"]), "w", encoding="utf-8", newline="") as f:
            f.write(r["content"])
    for name, _ in policies:
        src = os.path.join(parts_root, name or "_")
        tasks = sorted(os.path.join(src, t) for t in os.listdir(src))
        out = os.path.join(args.out, name) if name else args.out
        cmd = [binary, "reduce", "--merge", *tasks, "--out", out, "--quiet"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"spark_reduce: {shlex.join(cmd)} failed: {done.stderr.strip()}")
    shutil.rmtree(parts_root, ignore_errors=True)
    elapsed = time.monotonic() - started
    print(
        f"spark_reduce: {len({r['task'] for r in results})} tasks, {len(policies)} policies, "
        f"reports in {args.out} ({elapsed:.1f}s)"
    )
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
