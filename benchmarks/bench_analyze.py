"""Benchmark `ens analyze uniformity` on a full-size test_points.csv (99,819 rows x 30 of 971).

Target: read + chi-square analysis in under 1 s. Prints the median of several
repeats for: reading test_points.csv, the analysis alone, both together, and the plot.

    .venv/bin/python benchmarks/bench_analyze.py [--rows 99819] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from analysis.uniformity import uniformity
from ensemble.competition.layout import FACE_971
from ensemble.competition.subsets import draw_point_subsets
from ensemble.io.test_points import read_test_points, write_test_points


def _median_seconds(function, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    """Write a full-size file, then time read, analysis and plot."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=99_819)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "test_points.csv"
        indices = draw_point_subsets(np.random.default_rng(0), args.rows, 971, 30)
        write_test_points(path, [f"{i:06d}.jpg" for i in range(args.rows)], indices)
        size_mb = path.stat().st_size / 1e6

        read_s, table = _median_seconds(
            lambda: read_test_points(path, 971, ragged=True), args.repeats
        )
        analysis_s, result = _median_seconds(
            lambda: uniformity(table.indices, FACE_971), args.repeats
        )
        total_s, _ = _median_seconds(
            lambda: uniformity(read_test_points(path, 971, ragged=True).indices, FACE_971),
            args.repeats,
        )
        from analysis.plots import uniformity_plot

        plot_s, _ = _median_seconds(
            lambda: uniformity_plot(result, FACE_971, Path(tmp) / "uniformity.png"), args.repeats
        )
    print(f"test_points.csv: {args.rows:,} rows x 30 indices of 971, {size_mb:.1f} MB")
    print(f"median of {args.repeats} repeats")
    print(f"read_test_points          {read_s:8.3f} s")
    print(f"uniformity analysis       {analysis_s:8.3f} s")
    print(f"read + analysis           {total_s:8.3f} s   (target < 1 s)")
    print(f"histogram PNG             {plot_s:8.3f} s")
    adjusted = result.p_value_design
    print(f"chi-square {result.statistic:.1f}, df {result.df}, p (adjusted) {adjusted:.3f}")


if __name__ == "__main__":
    main()
