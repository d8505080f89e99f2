"""Benchmark `ens score` on a full-size demo-style data folder, as a user waits for it.

Writes a data folder with `--rows` test rows (default 99,819, the real test set): the hidden
truth `test/landmarks.csv` (971 integer points a row, tab-separated, as `ens make-demo` writes
it: about 734 MB), `test/test_points.csv` (30 distinct indices a row) and one submission (the
truth's requested points plus noise, 4 decimals), then times `ens score SUB --data DIR` in a
fresh process (median of `--repeats`) and checks the scores against a plain numpy computation.

    .venv/bin/python benchmarks/bench_score.py
    .venv/bin/python benchmarks/bench_score.py --rows 20000 --repeats 3 --keep /tmp/score_data
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

N_POINTS = 971
K = 30
_TEMPLATES = 1000  # distinct truth rows, repeated under different names (text stays realistic)


def make_score_data(folder: Path, rows: int, seed: int = 0) -> tuple[Path, np.ndarray]:
    """Write DIR/test/{landmarks,test_points}.csv and DIR/sub.csv; return (sub path, truth).

    `truth` is the submission's true values (rows, K, 2), for checking the scores.
    """
    from ensemble.competition.subsets import draw_point_subsets
    from ensemble.io.checks import point_columns
    from ensemble.io.submission import write_submission
    from ensemble.io.test_points import write_test_points

    rng = np.random.default_rng(seed)
    test = folder / "test"
    test.mkdir(parents=True, exist_ok=True)
    names = [f"{i:08d}.jpg" for i in range(rows)]
    indices = draw_point_subsets(rng, rows, N_POINTS, K)
    write_test_points(test / "test_points.csv", names, indices)
    templates = rng.integers(0, 500, size=(_TEMPLATES, N_POINTS, 2))
    texts = ["\t".join(map(str, row.ravel().tolist())) for row in templates]
    which = rng.integers(0, _TEMPLATES, size=rows)
    header = "\t".join(["file_name", *point_columns(N_POINTS)])
    with open(test / "landmarks.csv", "w", encoding="utf-8", newline="") as handle:
        handle.write(header + "\n")
        for start in range(0, rows, 4096):
            stop = min(rows, start + 4096)
            handle.write("".join(f"{names[r]}\t{texts[which[r]]}\n" for r in range(start, stop)))
    truth = np.take_along_axis(templates[which], indices[:, :, None].astype(np.int64), axis=1)
    values = truth + rng.normal(0, 3, size=truth.shape)
    submission = folder / "sub.csv"
    write_submission(submission, names, values)
    return submission, truth.astype(np.float64)


def expected_scores(submission: Path, truth: np.ndarray, folder: Path) -> tuple[float, float]:
    """Public and private MSE by plain numpy on the written submission (the reference)."""
    from ensemble.competition.metric import public_mask
    from ensemble.io.submission import read_submission
    from ensemble.io.test_points import read_test_points

    values = read_submission(submission).values
    per_row = ((values - truth) ** 2).reshape(len(truth), -1).mean(axis=1)
    public = public_mask(read_test_points(folder / "test" / "test_points.csv").file_names)
    return float(per_row[public].mean()), float(per_row[~public].mean())


def score_walls(submission: Path, folder: Path, repeats: int) -> tuple[list[float], str]:
    """Wall seconds of `ens score` in a fresh process each time, and its last output."""
    ens = str(Path(sys.executable).with_name("ens"))
    command = [ens, "score", str(submission), "--data", str(folder)]
    walls, output = [], ""
    for _ in range(repeats):
        start = time.perf_counter()
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        walls.append(time.perf_counter() - start)
    return walls, output


def main() -> None:
    """Write the data, time `ens score` and check its numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=99_819)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="Write (or reuse) the data in this folder.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_score_") as tmp:
        folder = args.keep or Path(tmp)
        start = time.perf_counter()
        submission, truth = make_score_data(folder, args.rows)
        size = (folder / "test" / "landmarks.csv").stat().st_size / 2**20
        took = time.perf_counter() - start
        print(f"wrote {args.rows:,} rows ({size:.0f} MiB of truth) in {took:.1f} s")
        score_walls(submission, folder, 1)  # warm the file cache
        walls, output = score_walls(submission, folder, args.repeats)
        public, private = expected_scores(submission, truth, folder)
    line = output.strip().splitlines()[-1].split()
    got = float(line[-2]), float(line[-1])
    print(
        f"ens score (fresh process): median {statistics.median(walls):.3f} s "
        f"(min {min(walls):.3f}, max {max(walls):.3f}, {args.repeats} runs)"
    )
    print(f"scores {got}, numpy {public:.4f} / {private:.4f}")
    if abs(got[0] - public) > 1e-4 or abs(got[1] - private) > 1e-4:
        sys.exit("ens score disagrees with numpy")


if __name__ == "__main__":
    main()
