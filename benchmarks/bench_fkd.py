"""Import and export time of Kaggle Facial Keypoints files at the real sizes.

7,049 training rows (70% labelled on 4 keypoints only), 1,783 test images and 27,124 lookup
rows, with random pixels. Prints the seconds of `import_fkd` and `export_fkd`.

    .venv/bin/python benchmarks/bench_fkd.py [--train 7049] [--test 1783]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from ensemble.fkd.exporter import export_fkd
from ensemble.fkd.importer import import_fkd
from ensemble.fkd.layout import ALWAYS_LABELLED, KEYPOINTS, coordinate_columns
from ensemble.io.submission import write_submission
from ensemble.io.test_points import read_test_points

GREY = np.array([str(v) for v in range(256)], dtype=object)


def _image(rng: np.random.Generator) -> str:
    return " ".join(GREY[rng.integers(0, 256, 9216)])


def write_files(root: Path, n_train: int, n_test: int, seed: int = 0) -> None:
    """Kaggle-shaped files: real column layout and missing-label pattern, random pixels."""
    rng = np.random.default_rng(seed)
    always = [KEYPOINTS.index(name) for name in ALWAYS_LABELLED]
    with open(root / "training.csv", "w") as handle:
        handle.write(",".join([*coordinate_columns(), "Image"]) + "\n")
        for _ in range(n_train):
            points = rng.uniform(10, 86, (15, 2))
            if rng.random() < 0.7:
                keep = np.zeros(15, dtype=bool)
                keep[always] = True
                points[~keep] = np.nan
            cells = ["" if np.isnan(v) else f"{v:.10g}" for v in points.ravel()]
            handle.write(",".join([*cells, _image(rng)]) + "\n")
    with open(root / "test.csv", "w") as handle:
        handle.write("ImageId,Image\n")
        for image in range(1, n_test + 1):
            handle.write(f"{image},{_image(rng)}\n")
    columns = coordinate_columns()
    with open(root / "IdLookupTable.csv", "w") as handle:
        handle.write("RowId,ImageId,FeatureName,Location\n")
        row = 0
        for image in range(1, n_test + 1):
            points = range(15) if image % 3 == 0 else sorted(always)
            for point in points:
                for axis in (0, 1):
                    row += 1
                    handle.write(f"{row},{image},{columns[2 * point + axis]},\n")


def main() -> None:
    """Write real-size files, then time the import and the export."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", type=int, default=7049)
    parser.add_argument("--test", type=int, default=1783)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_files(root, args.train, args.test)
        size = sum(p.stat().st_size for p in root.iterdir()) / 1e6
        start = time.perf_counter()
        summary = import_fkd(
            root / "training.csv", root / "test.csv", root / "IdLookupTable.csv", root / "data"
        )
        seconds = time.perf_counter() - start
        print(
            f"import_fkd: {summary.n_train} train + {summary.n_test} test images, "
            f"{summary.n_lookup_rows} lookup rows, {size:.0f} MB in {seconds:.2f} s"
        )
        points = read_test_points(root / "data/test/test_points.csv", n_points=15, ragged=True)
        values = np.where(np.repeat(points.mask[..., None], 2, axis=2), 48.0, np.nan)
        write_submission(root / "sub.csv", points.file_names, values)
        start = time.perf_counter()
        rows = export_fkd(root / "sub.csv", root / "IdLookupTable.csv", root / "kaggle.csv")
        print(f"export_fkd: {rows} rows in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
