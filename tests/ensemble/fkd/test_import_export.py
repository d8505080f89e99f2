"""Kaggle Facial Keypoints: synthetic files -> import -> submission -> export, and bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from ensemble.cli import cli
from ensemble.errors import InputError
from ensemble.fkd.exporter import export_fkd
from ensemble.fkd.importer import import_fkd
from ensemble.fkd.layout import ALWAYS_LABELLED, KEYPOINTS, coordinate_columns
from ensemble.io.landmarks import read_landmarks
from ensemble.io.submission import read_submission, write_submission
from ensemble.io.test_points import read_test_points
from ensemble.synthetic.fkd import make_fkd_demo


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory) -> Path:
    """Synthetic Kaggle files: 20 training rows, 6 test images."""
    raw = tmp_path_factory.mktemp("fkd") / "raw"
    summary = make_fkd_demo(raw, n_train=20, n_test=6, seed=1)
    assert summary.n_train == 20 and summary.n_test == 6
    return raw


@pytest.fixture(scope="module")
def imported(kaggle: Path) -> Path:
    out = kaggle.parent / "data"
    import_fkd(kaggle / "training.csv", kaggle / "test.csv", kaggle / "IdLookupTable.csv", out)
    return out


def _pixels(text: str) -> np.ndarray:
    return np.array([int(v) for v in text.split(" ")], dtype=np.uint8).reshape(96, 96)


def test_training_rows_become_pngs_and_landmarks_with_missing_cells(kaggle, imported) -> None:
    raw = pd.read_csv(kaggle / "training.csv")
    landmarks = read_landmarks(imported / "train" / "landmarks.csv", allow_missing=True)
    expected = raw[coordinate_columns()].to_numpy(dtype=np.float64).reshape(-1, 15, 2)
    np.testing.assert_allclose(landmarks.points, expected, rtol=1e-6)
    np.testing.assert_array_equal(np.isnan(landmarks.points), np.isnan(expected))
    for name, text in zip(landmarks.file_names, raw["Image"], strict=True):
        with Image.open(imported / "train" / "images" / name) as image:
            assert image.mode == "L" and image.size == (96, 96)
            np.testing.assert_array_equal(np.asarray(image), _pixels(text))
    present = ~np.isnan(landmarks.points[:, :, 0])
    always = [KEYPOINTS.index(name) for name in ALWAYS_LABELLED]
    assert present[:, always].all()
    partial = ~present.all(axis=1)
    assert partial.any() and not partial.all()
    assert present[partial].sum(axis=1).tolist() == [4] * int(partial.sum())


def test_test_points_follow_the_lookup_order(kaggle, imported) -> None:
    lookup = pd.read_csv(kaggle / "IdLookupTable.csv")
    lookup["point"] = [KEYPOINTS.index(f[:-2]) for f in lookup["FeatureName"]]
    points = read_test_points(imported / "test" / "test_points.csv", n_points=15, ragged=True)
    expected = {
        f"{image}.png": list(dict.fromkeys(group["point"]))
        for image, group in lookup.groupby("ImageId", sort=False)
    }
    got = {
        name: row[row >= 0].tolist()
        for name, row in zip(points.file_names, points.indices, strict=True)
    }
    assert got == expected
    assert len({len(v) for v in got.values()}) > 1  # a varying number of requested keypoints
    meta = json.loads((imported / "fkd.json").read_text())
    assert meta["keypoints"] == list(KEYPOINTS) and meta["image_size"] == 96
    columns = meta["lookup_columns"]
    for entry, row_id in zip(meta["lookup"], lookup["RowId"], strict=True):
        record = dict(zip(columns, entry, strict=True))
        assert record["RowId"] == row_id
        assert got[record["file_name"]][record["pair"]] == record["point"]
        assert record["FeatureName"] == f"{KEYPOINTS[record['point']]}_{'xy'[record['axis']]}"
    test = pd.read_csv(kaggle / "test.csv")
    for image_id, text in zip(test["ImageId"], test["Image"], strict=True):
        with Image.open(imported / "test" / "images" / f"{image_id}.png") as image:
            np.testing.assert_array_equal(np.asarray(image), _pixels(text))


def test_export_round_trip_clips_to_the_image(kaggle, imported, tmp_path) -> None:
    points = read_test_points(imported / "test" / "test_points.csv", n_points=15, ragged=True)
    rng = np.random.default_rng(0)
    known = rng.uniform(-10.0, 106.0, (len(points), 15, 2))  # some outside the image
    values = np.take_along_axis(known, np.maximum(points.indices, 0)[..., None], axis=1)
    values[~points.mask] = np.nan
    submission = tmp_path / "submission.csv"
    write_submission(submission, points.file_names, values)
    np.testing.assert_allclose(
        read_submission(submission, allow_missing=True).values, values, atol=5e-5
    )
    out = tmp_path / "kaggle.csv"
    assert export_fkd(submission, kaggle / "IdLookupTable.csv", out) > 0

    lookup = pd.read_csv(kaggle / "IdLookupTable.csv")
    exported = pd.read_csv(out)
    assert exported.columns.tolist() == ["RowId", "Location"]
    assert exported["RowId"].tolist() == lookup["RowId"].tolist()
    row_of = {name: row for row, name in enumerate(points.file_names)}
    expected = [
        np.clip(
            np.round(known[row_of[f"{image}.png"], KEYPOINTS.index(f[:-2]), "xy".index(f[-1])], 4),
            0,
            96,
        )
        for image, f in zip(lookup["ImageId"], lookup["FeatureName"], strict=True)
    ]
    np.testing.assert_allclose(exported["Location"], expected, atol=1e-9)
    assert exported["Location"].min() == 0.0 and exported["Location"].max() == 96.0


def test_exporting_the_truth_scores_zero_rmse(kaggle, imported, tmp_path) -> None:
    lookup = pd.read_csv(kaggle / "IdLookupTable.csv")
    solution = pd.read_csv(kaggle / "solution.csv")
    keys = zip(lookup["ImageId"], lookup["FeatureName"], strict=True)
    truth = dict(zip(keys, solution["Location"], strict=True))
    points = read_test_points(imported / "test" / "test_points.csv", n_points=15, ragged=True)
    values = np.full((len(points), points.indices.shape[1], 2), np.nan)
    for row, (name, indices) in enumerate(zip(points.file_names, points.indices, strict=True)):
        for j, index in enumerate(indices[indices >= 0]):
            for axis in (0, 1):
                values[row, j, axis] = truth[int(name[:-4]), f"{KEYPOINTS[index]}_{'xy'[axis]}"]
    submission = tmp_path / "truth.csv"
    write_submission(submission, points.file_names, values)
    out = tmp_path / "kaggle.csv"
    result = CliRunner().invoke(
        cli,
        [
            "export-fkd",
            str(submission),
            "--lookup",
            str(kaggle / "IdLookupTable.csv"),
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    exported = pd.read_csv(out)["Location"].to_numpy()
    rmse = np.sqrt(np.mean((exported - solution["Location"].to_numpy()) ** 2))
    assert rmse < 1e-4


def test_export_names_missing_rows_and_values(kaggle, imported, tmp_path) -> None:
    points = read_test_points(imported / "test" / "test_points.csv", n_points=15, ragged=True)
    values = np.where(np.repeat(points.mask[..., None], 2, axis=2), 50.0, np.nan)
    short = tmp_path / "short.csv"
    write_submission(short, points.file_names[:-1], values[:-1])
    with pytest.raises(InputError, match=r"no row for 1 requested image"):
        export_fkd(short, kaggle / "IdLookupTable.csv", tmp_path / "a.csv")
    values[2, 0, 1] = np.nan
    holes = tmp_path / "holes.csv"
    write_submission(holes, points.file_names, values)
    with pytest.raises(InputError, match=r"line 4: empty value in column 'Point_M0_Y'"):
        export_fkd(holes, kaggle / "IdLookupTable.csv", tmp_path / "b.csv")
    assert not (tmp_path / "a.csv").exists() and not (tmp_path / "b.csv").exists()


def test_synthetic_files_are_deterministic(tmp_path) -> None:
    for name in ("a", "b"):
        make_fkd_demo(tmp_path / name, n_train=3, n_test=2, seed=5)
    for file in ("training.csv", "test.csv", "IdLookupTable.csv", "solution.csv"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "IdLookupTable.csv",
        "solution.csv",
        "test.csv",
        "training.csv",
    ]


# ----------------------------------------------------------------------------------------------
# malformed Kaggle files


def _tiny_files(root: Path) -> dict[str, Path]:
    """Hand-written Kaggle files: 3 training rows (one partial), 2 test images, 6 lookup rows."""
    root.mkdir()
    rng = np.random.default_rng(0)

    def image() -> str:
        return " ".join(str(v) for v in rng.integers(0, 256, 9216))

    coords = rng.uniform(10, 80, (3, 30)).round(4).astype(str)
    coords[1, 4:20] = ""
    train = [",".join([*coordinate_columns(), "Image"])]
    train += [",".join([*row, image()]) for row in coords]
    test = ["ImageId,Image", f"1,{image()}", f"2,{image()}"]
    lookup = ["RowId,ImageId,FeatureName,Location"]
    requests = [(1, "left_eye_center_x"), (1, "left_eye_center_y"), (1, "nose_tip_x")]
    requests += [(1, "nose_tip_y"), (2, "mouth_left_corner_x"), (2, "mouth_left_corner_y")]
    lookup += [f"{row},{image},{feature}," for row, (image, feature) in enumerate(requests, 1)]
    paths = {}
    for name, lines in (("training", train), ("test", test), ("lookup", lookup)):
        paths[name] = root / f"{name}.csv"
        paths[name].write_text("\n".join(lines) + "\n")
    return paths


def _edit(path: Path, line: int, old: str, new: str) -> None:
    """Replace the first `old` on `line` (1-based) of `path` with `new`."""
    lines = path.read_text().split("\n")
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_text("\n".join(lines))


def _first_pixel(path: Path, line: int, token: str) -> None:
    """Replace the first pixel of the Image cell on `line` with `token`."""
    image = path.read_text().split("\n")[line - 1].rsplit(",", 1)[1]
    _edit(path, line, "," + image, f",{token} " + image.split(" ", 1)[1])


def _first_cell(path: Path, line: int, token: str) -> None:
    """Replace the first cell on `line` with `token`."""
    cell = path.read_text().split("\n")[line - 1].split(",", 1)[0]
    _edit(path, line, cell + ",", token + ",")


CASES = {
    "extra pixel": (
        "training", lambda p: _first_pixel(p, 3, "7 7"),
        "line 3: Image has 9217 pixel values, expected 9216",
    ),
    "missing pixel": (
        "test", lambda p: _first_pixel(p, 2, ""), "line 2: Image has 9215 pixel values"
    ),
    "non-numeric pixel": (
        "training", lambda p: _first_pixel(p, 4, "abc"), "line 4: pixel 1 of Image is 'abc'"
    ),
    "pixel out of range": (
        "training", lambda p: _first_pixel(p, 2, "256"), "line 2: pixel 1 of Image is '256'"
    ),
    "non-numeric coordinate": (
        "training", lambda p: _first_cell(p, 3, "twelve"),
        "line 3: value 'twelve' in column 'left_eye_center_x' is not a finite number",
    ),
    "extra column": (
        "training", lambda p: _edit(p, 3, ",", ",1,"), "line 3: expected 31 columns, found 32"
    ),
    "wrong training header": (
        "training", lambda p: _edit(p, 1, "nose_tip_x", "nose_x"),
        "line 1: wrong header (column 21 is 'nose_x', expected 'nose_tip_x')",
    ),
    "unknown FeatureName": (
        "lookup", lambda p: _edit(p, 5, "nose_tip_y", "nose_top_y"),
        "line 5: unknown FeatureName 'nose_top_y'",
    ),
    "duplicate RowId": (
        "lookup", lambda p: _edit(p, 6, "5,2,", "3,2,"),
        "line 6: duplicate RowId 3 (first seen on line 4)",
    ),
    "ImageId missing from test.csv": (
        "lookup", lambda p: _edit(p, 7, "6,2,", "6,7,"), "line 7: ImageId 7 is not in test.csv"
    ),
    "bad ImageId in test.csv": (
        "test", lambda p: _edit(p, 3, "2,", "x,"),
        "line 3: ImageId 'x' is not a non-negative integer",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_files_get_file_and_line_and_leave_nothing(tmp_path, case) -> None:
    name, corrupt, message = CASES[case]
    paths = _tiny_files(tmp_path / "in")
    corrupt(paths[name])
    out = tmp_path / "out" / "data"
    args = [paths["training"], paths["test"], paths["lookup"], out]
    with pytest.raises(InputError) as error:
        import_fkd(*args)
    assert error.value.path == str(paths[name])
    assert message in str(error.value)
    assert not out.exists()
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    result = CliRunner().invoke(
        cli,
        [
            "import-fkd",
            "--training",
            str(args[0]),
            "--test",
            str(args[1]),
            "--lookup",
            str(args[2]),
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 1
    assert f"{paths[name]}, {message}" in result.output
    assert "Traceback" not in result.output


def test_valid_tiny_files_import_and_refuse_a_non_empty_output(tmp_path) -> None:
    paths = _tiny_files(tmp_path / "in")
    out = tmp_path / "data"
    summary = import_fkd(paths["training"], paths["test"], paths["lookup"], out)
    assert (summary.n_train, summary.n_train_complete, summary.n_test) == (3, 2, 2)
    points = read_test_points(out / "test" / "test_points.csv", n_points=15, ragged=True)
    assert [row[row >= 0].tolist() for row in points.indices] == [[0, 10], [11]]
    with pytest.raises(InputError, match="not empty"):
        import_fkd(paths["training"], paths["test"], paths["lookup"], out)


def test_make_demo_fkd_then_import_fkd_on_the_command_line(tmp_path) -> None:
    runner = CliRunner()
    raw, data = tmp_path / "raw", tmp_path / "data"
    result = runner.invoke(
        cli, ["make-demo", "--format", "fkd", "--train", "4", "--test", "2", str(raw)]
    )
    assert result.exit_code == 0, result.output
    assert (raw / "training.csv").read_text().startswith("left_eye_center_x,left_eye_center_y,")
    result = runner.invoke(
        cli,
        ["import-fkd", "--training", str(raw / "training.csv"), "--test", str(raw / "test.csv")]
        + ["--lookup", str(raw / "IdLookupTable.csv"), "-o", str(data)],
    )
    assert result.exit_code == 0, result.output
    assert "4 training images" in result.output
    assert len(read_landmarks(data / "train" / "landmarks.csv", allow_missing=True)) == 4
