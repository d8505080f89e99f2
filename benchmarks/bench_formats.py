"""Parse time of full-size competition files (99,819-row test_points.csv; landmarks load).

Run: .venv/bin/python benchmarks/bench_formats.py [--landmarks-rows 50000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ensemble.competition.subsets import draw_point_subsets
from ensemble.io.landmarks import read_landmarks, write_landmarks
from ensemble.io.test_points import read_test_points, write_test_points


def _median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Write full-size synthetic files to a temp dir and time the readers."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--test-rows", type=int, default=99_819)
    parser.add_argument("--landmarks-rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        names = [f"{i:08d}.jpg" for i in range(args.test_rows)]
        path = Path(tmp) / "test_points.csv"
        write_test_points(path, names, draw_point_subsets(rng, args.test_rows, 971, 30))
        seconds = _median_seconds(lambda: read_test_points(path, n_points=971), args.repeats)
        print(
            f"test_points.csv {args.test_rows} rows x 30: {seconds:.3f} s (median of "
            f"{args.repeats})"
        )

        rows = args.landmarks_rows
        landmarks = Path(tmp) / "landmarks.csv"
        points = rng.integers(0, 1000, size=(rows, 971, 2)).astype(np.float32)
        write_landmarks(landmarks, [f"{i:08d}.jpg" for i in range(rows)], points, integer=True)
        del points
        seconds = _median_seconds(lambda: read_landmarks(landmarks), 1)
        imports_mb = _child_peak_mb("import ensemble.io.landmarks")
        peak_mb = _child_peak_mb(
            f"from ensemble.io.landmarks import read_landmarks; read_landmarks({str(landmarks)!r})"
        )
        data_mb = rows * 971 * 2 * 4 / 2**20
        print(
            f"landmarks.csv {rows} x 971: {seconds:.2f} s, {rows / seconds:,.0f} rows/s; "
            f"float32 data {data_mb:.0f} MiB; peak RSS of a reading process {peak_mb:.0f} MiB, "
            f"{peak_mb - imports_mb:.0f} MiB above its imports "
            f"({(peak_mb - imports_mb) / data_mb:.2f}x the data)"
        )


def _child_peak_mb(code: str) -> float:
    """Peak resident memory (MiB) of a fresh Python process running `code`."""
    script = (
        f"{code}\nimport re; "
        "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))"
    )
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return int(output.split()[-1]) / 1024


if __name__ == "__main__":
    main()
