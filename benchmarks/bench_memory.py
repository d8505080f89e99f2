"""Benchmark: peak memory and time of reading train/landmarks.csv, per command, by row count.

Writes a competition-layout data folder per size (train/landmarks.csv: tab-separated, 971
integer points a row; every train and test image a hard link to a small JPEG, so that
`ens baseline` can read image sizes without gigabytes of images), then runs each measurement in
a fresh child process and reports its peak RSS (ru_maxrss from wait4), wall and CPU time:

- `ens baseline`: the whole command (mean-shape submission for --test rows);
- `read_landmarks`: the labels as train and import-run read them (every point, float32);
- `prepare`: `models.cache.split_file_names(DATA, "train")`, the label reading of `ens prepare`;
- `train`: the labels of `ens train` / `train-all` (`load_run_data` without the image cache:
  a letterbox geometry row for every image): points, targets on the crop, `check_labels`, and
  the mean and spread of the targets that start the head (`spread_log_sigma`);
- `analyze`: `truth_for(DATA, every 10th name)`, the labels of validation images that analyze
  and fitted blends read.

Each child puts its checkout first on sys.path: this one ("after") and, with --before, an older
one (an unpacked `git archive` of an older commit), measured alternately on the same data, up to
--before-rows rows (the old code needs about 17 GB for `ens baseline` at full size). CPU
seconds (user + system) are given beside wall time: on a shared machine they vary less. --work
keeps the data for the next run (the full-size file is about 3 GB; smaller sizes are its first
rows).

    mkdir /tmp/before && git archive ee14b1a | tar -x -C /tmp/before
    .venv/bin/python benchmarks/bench_memory.py --work /tmp/bench_memory --before /tmp/before
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ensemble.io.data_folder import DataFolder  # noqa: E402
from ensemble.io.landmarks import LandmarksWriter  # noqa: E402
from ensemble.io.test_points import write_test_points  # noqa: E402

N_POINTS = 971
FULL = 393_930
CHUNK = 4096
LINKS = 50_000  # hard links to one file (ext4 allows 65,000)
IMAGE_SIZE = (480, 640)  # width, height of the one JPEG every image links to

CHILD = {
    "ens baseline": (
        "import sys; from ensemble.cli import main; "
        "sys.argv = ['ens', 'baseline', '--data', DATA, '-o', OUT]; main()"
    ),
    "read_landmarks": (
        "from ensemble.io.landmarks import read_landmarks; "
        "read_landmarks(DATA + '/train/landmarks.csv', allow_missing=True)"
    ),
    "prepare": ("from models.cache import split_file_names; split_file_names(DATA, 'train')"),
    "train": (
        "import numpy as np; from types import SimpleNamespace\n"
        "from ensemble.io.landmarks import read_landmarks; from models.labels import check_labels\n"
        "from models.data import RunData, validation_mask\n"
        "from models.loop import spread_log_sigma\n"
        "labels = read_landmarks(DATA + '/train/landmarks.csv', allow_missing=True)\n"
        "geometry = np.tile([0.2, 0.2, 0.0, 16.0], (len(labels), 1))\n"
        "try:\n"
        "    from models.data import CropTargets\n"
        "    targets = CropTargets(labels.points, geometry, 128)\n"
        "except ImportError:\n"
        "    from models.geometry import normalise, to_crop\n"
        "    targets = normalise(to_crop(labels.points, geometry), 128).astype(np.float32)\n"
        "mask = validation_mask(len(labels), 0.1, 0)\n"
        "check_labels(DATA, labels.points, np.flatnonzero(~mask))\n"
        "train = SimpleNamespace(valid=np.ones(len(labels), dtype=bool))\n"
        "data = RunData(train, None, labels.points, targets, mask)\n"
        "spread_log_sigma(data)"
    ),
    "analyze": (
        "import numpy as np; from ensemble.io.aligned_predictions import truth_for; "
        "names = np.array([f'{i:08d}.jpg' for i in range(0, ROWS, 10)], dtype=object); "
        "truth_for(DATA, names)"
    ),
}


def write_full_labels(path: Path, rows: int) -> None:
    """`rows` rows of integer points around a face-sized shape (seeded: the same every time)."""
    rng = np.random.default_rng(0)
    angle = np.linspace(0, 2 * np.pi, N_POINTS, endpoint=False)
    shape = np.stack([240 + 150 * np.cos(angle), 320 + 200 * np.sin(angle)], axis=1)
    with LandmarksWriter(path, N_POINTS, integer=True) as writer:
        for start in range(0, rows, CHUNK):
            count = min(CHUNK, rows - start)
            names = [f"{i:08d}.jpg" for i in range(start, start + count)]
            points = shape + rng.normal(0, 20, (count, N_POINTS, 2))
            writer.write(names, points)


def head_lines(source: Path, target: Path, rows: int) -> None:
    """The header and the first `rows` data lines of `source`, written to `target`."""
    with open(source, "rb") as inp, open(target, "wb") as out:
        for _ in range(rows + 1):
            out.write(inp.readline())


def link_images(folder: Path, names: list[str], jpeg: Path) -> None:
    """Every name in `folder` as a hard link to a copy of `jpeg` (a copy per LINKS names)."""
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(names), LINKS):
        source = jpeg.with_name(
            f"{jpeg.stem}_{folder.parent.parent.name}_{folder.parent.name}_{start}.jpg"
        )
        if not source.is_file():
            shutil.copyfile(jpeg, source)
        for name in names[start : start + LINKS]:
            target = folder / name
            if not target.exists():
                os.link(source, target)


def make_data(work: Path, rows: int, test_rows: int) -> Path:
    """The data folder of `rows` train rows (reused when it is there)."""
    from PIL import Image

    full = work / "landmarks_full.csv"
    if not full.is_file():
        start = time.perf_counter()
        write_full_labels(full, FULL)
        print(
            f"wrote {full} ({full.stat().st_size / 2**30:.2f} GiB) in "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
    folder = DataFolder.at(work / f"data_{rows}_{test_rows}")
    jpeg = work / "face.jpg"
    if not jpeg.is_file():
        Image.new("RGB", IMAGE_SIZE, (120, 110, 100)).save(jpeg)
    if not folder.train_landmarks.is_file():
        folder.train_landmarks.parent.mkdir(parents=True, exist_ok=True)
        if rows == FULL:
            os.link(full, folder.train_landmarks)
        else:
            head_lines(full, folder.train_landmarks, rows)
    link_images(folder.images("train"), [f"{i:08d}.jpg" for i in range(rows)], jpeg)
    test_names = [f"t{i:07d}.jpg" for i in range(test_rows)]
    link_images(folder.images("test"), test_names, jpeg)
    if not folder.test_points.is_file():
        rng = np.random.default_rng(1)
        indices = np.stack([rng.choice(N_POINTS, 30, replace=False) for _ in test_names])
        write_test_points(folder.test_points, test_names, indices)
    return folder.path


def measure(root: Path, what: str, data: Path, rows: int, out: Path) -> tuple[float, float, float]:
    """Peak RSS (GB), wall and CPU seconds of one measurement in a fresh child process."""
    prelude = (
        f"import sys; sys.path.insert(0, {str(root)!r}); "
        f"DATA = {str(data)!r}; OUT = {str(out)!r}; ROWS = {rows}\n"
    )
    start = time.perf_counter()
    command = [sys.executable, "-c", prelude + CHILD[what]]
    child = subprocess.Popen(command, cwd=out.parent, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{what} on {rows:,} rows failed")
    return usage.ru_maxrss * 1024 / 1e9, wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    """Write the data and measure every command at every size (before and after, alternately)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[25_000, 50_000, 100_000, FULL])
    parser.add_argument("--test", type=int, default=1000, help="test rows (ens baseline)")
    parser.add_argument("--measure", nargs="+", choices=sorted(CHILD), default=list(CHILD))
    parser.add_argument("--before", type=Path, help="an older checkout to measure as well")
    parser.add_argument(
        "--before-rows", type=int, default=100_000, help="largest size to measure --before at"
    )
    parser.add_argument("--work", type=Path, help="Write (or reuse) the data in this folder.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_memory_") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print("| rows | measurement | code | peak RSS (GB) | wall (s) | CPU (s) |")
        print("|---:|---|---|---:|---:|---:|")
        for rows in args.sizes:
            data = make_data(work, rows, args.test)
            roots = [("after", ROOT)]
            if args.before and rows <= args.before_rows:
                roots.insert(0, ("before", args.before))
            for what in args.measure:
                for label, root in roots:
                    peak, wall, cpu = measure(root, what, data, rows, work / "baseline.csv")
                    print(
                        f"| {rows:,} | {what} | {label} | {peak:.2f} | {wall:.1f} | {cpu:.1f} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
