"""Which CSV engine for the competition formats: pyarrow, polars or pandas, on the same files.

For each engine, in a fresh process each: the import time, reading one full-size submission
(99,819 rows x 60 values) to float64 columns, writing it back rounded to 4 decimals (and whether
the bytes equal `ensemble.io.submission.write_submission`'s), and reading a full-size landmarks
TSV (99,819 rows x 1,942 values, 734 MB) in full. Medians of `--repeats` (CPU seconds: user +
system, and wall). polars is not a dependency: pass `--polars-path DIR` with a
`pip install --target DIR polars` to include it.

    .venv/bin/python benchmarks/bench_engines.py
    .venv/bin/python benchmarks/bench_engines.py --polars-path /tmp/polarslib --no-truth
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

_PROBE = r"""
import json, resource, statistics, sys, time
engine, sub, truth, written = sys.argv[1:5]
repeats = int(sys.argv[5])
if sys.argv[6]:
    sys.path.insert(0, sys.argv[6])

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

def timed(function, repeats=repeats):
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        c, w = cpu(), time.perf_counter()
        out = function()
        walls.append(time.perf_counter() - w)
        cpus.append(cpu() - c)
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus)}, out

start = time.perf_counter()
import numpy as np
header = open(sub).readline().rstrip("\n").split(",")
theader = open(truth).readline().rstrip("\n").split("\t") if truth else []
if engine == "pyarrow":
    import io
    import pyarrow as pa, pyarrow.csv as pacsv
    imported = time.perf_counter() - start
    def read_sub():
        types = {h: pa.float64() for h in header[1:]}
        types["file_name"] = pa.string()
        table = pacsv.read_csv(sub, convert_options=pacsv.ConvertOptions(column_types=types))
        return table.column(0), np.stack([table.column(j).to_numpy() for j in range(1, 61)])
    def write_sub(names, values):
        columns = [names, *(pa.array(values[j]) for j in range(len(values)))]
        buffer = io.BytesIO()
        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        pacsv.write_csv(pa.table(columns, names=header), buffer, write_options=options)
        return buffer.getvalue()
    def read_truth():
        types = {h: pa.float64() for h in theader[1:]}
        types["file_name"] = pa.string()
        return pacsv.read_csv(
            truth,
            parse_options=pacsv.ParseOptions(delimiter="\t"),
            convert_options=pacsv.ConvertOptions(column_types=types),
        ).num_rows
elif engine == "polars":
    import polars as pl
    imported = time.perf_counter() - start
    def read_sub():
        frame = pl.read_csv(sub, schema_overrides={h: pl.Float64 for h in header[1:]})
        return frame["file_name"], frame.select(header[1:]).to_numpy().T.copy()
    def write_sub(names, values):
        columns = {h: values[j] for j, h in enumerate(header[1:])}
        frame = pl.DataFrame({"file_name": names, **columns})
        return frame.write_csv(include_header=False).encode()
    def read_truth():
        types = {h: pl.Float64 for h in theader[1:]}
        return pl.read_csv(truth, separator="\t", schema_overrides=types).height
else:
    import io
    import pandas as pd
    imported = time.perf_counter() - start
    def read_sub():
        frame = pd.read_csv(sub)
        return frame["file_name"], frame.iloc[:, 1:].to_numpy().T.copy()
    def write_sub(names, values):
        frame = pd.DataFrame(values.T, columns=header[1:])
        frame.insert(0, "file_name", names)
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, header=False)
        return buffer.getvalue().encode()
    def read_truth():
        return len(pd.read_csv(truth, sep="\t"))
result = {"import": imported}
result["read submission"], (names, values) = timed(read_sub)
rounded = np.round(values, 4)
result["write submission"], text = timed(lambda: write_sub(names, rounded))
expected = open(written, "rb").read().split(b"\n", 1)[1]
result["same bytes as ens"] = text == expected
if truth:
    result["read truth"], _ = timed(read_truth, 1)
print(json.dumps(result))
"""


def main() -> None:
    """Write the inputs, run each engine in a fresh process, print a table."""
    from bench_blend import make_submissions
    from bench_score import make_score_data

    from ensemble.io.submission import read_submission, write_submission

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=99_819)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--polars-path", default="")
    parser.add_argument("--no-truth", action="store_true", help="Skip the 734 MB landmarks read.")
    args = parser.parse_args()
    engines = ["pyarrow", "pandas"] + (["polars"] if args.polars_path else [])
    with tempfile.TemporaryDirectory(prefix="bench_engines_") as tmp:
        folder = Path(tmp)
        (sub,) = make_submissions(folder, 1, args.rows)
        written = folder / "written.csv"
        loaded = read_submission(sub)
        write_submission(written, loaded.file_names, loaded.values)
        truth = ""
        if not args.no_truth:
            make_score_data(folder / "score", args.rows)
            truth = str(folder / "score" / "test" / "landmarks.csv")
        results = {}
        for engine in engines:
            command = [sys.executable, "-c", _PROBE, engine, str(sub), truth, str(written)]
            command += [str(args.repeats), args.polars_path]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[engine] = json.loads(output)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end")
    for engine, result in results.items():
        parts = [f"import {result['import']:.3f} s"]
        for step in ("read submission", "write submission", "read truth"):
            if step in result:
                parts.append(
                    f"{step} {result[step]['cpu']:.2f} s CPU / {result[step]['wall']:.2f} s wall"
                )
        parts.append(f"same bytes as ens: {result['same bytes as ens']}")
        print(f"{engine:8s} " + "; ".join(parts))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
