"""`ens import-run` end to end on a tiny competition: every format to the same numbers, the val
score and baseline as training computes them, clean refusals, and the imported runs blended and
scored like trained ones."""

from __future__ import annotations

import json
import os
import pickle
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ensemble.io.landmarks import write_landmarks
from ensemble.io.predictions import load_predictions
from ensemble.io.submission import gather_points, read_submission, write_submission
from tests.helpers import direct_score, fails_cleanly, invoke_ens

N_POINTS = 12  # the tiny competition's


def _noisy(points: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    return points + np.random.default_rng(seed).normal(0, sigma, points.shape)


def _write(path: Path, kind: str, names, points: np.ndarray) -> Path:
    """Predictions in one of the accepted formats (names as the organisers write them)."""
    if kind == "pickle":
        paths = [f"data/{'test' if 'test' in path.name else 'train'}/images/{n}" for n in names]
        with open(path, "wb") as handle:
            pickle.dump({"image_names": paths, "landmarks": points}, handle)
    elif kind == "npz":
        np.savez(path, file_names=np.asarray(names, dtype=str), points=points)
    elif kind == "npz_alias":
        np.savez(path, image_names=np.asarray(names, dtype=str), landmarks=points)
    elif kind == "npy":
        np.save(path, points)
    else:
        write_landmarks(path, list(names), points)
    return path


def _import(data: Path, runs: Path, name: str, *args) -> object:
    result = invoke_ens(
        ["import-run", name, "--data", str(data), "--out", str(runs), *map(str, args)]
    )
    assert result.exit_code == 0, result.output
    return result


def _baseline(contents: dict, rows: np.ndarray) -> float:
    """The mean-shape baseline's val score on train `rows`: the mean relative shape of the
    other train images (all of them when `rows` is every one), scaled by each image's size."""
    names, points, sizes = contents["train"]
    others = np.setdiff1d(np.arange(len(names)), rows) if len(rows) < len(names) else rows
    relative = (points[others] / sizes[others, None, :]).mean(axis=0)
    predicted = relative[None] * sizes[rows, None, :]
    return direct_score(np.array(names, dtype=object)[rows], predicted, points[rows])


@pytest.mark.parametrize("kind", ["pickle", "npz", "npz_alias", "npy", "landmarks"])
def test_each_format_round_trips_to_the_same_numbers(tiny_competition, tmp_path, kind) -> None:
    data, contents = tiny_competition
    train_names, train_points, _ = contents["train"]
    test_names, test_points, _ = contents["test"]
    bare = kind == "npy"
    val_rows = np.arange(len(train_names)) if bare else np.array([1, 2, 4, 6])
    test_order = np.arange(len(test_names)) if bare else np.random.default_rng(1).permutation(6)
    test_pred = _noisy(test_points, 2.0, 0)
    val_pred = _noisy(train_points[val_rows], 2.0, 1)
    suffix = {"pickle": ".pkl", "npy": ".npy", "landmarks": ".csv"}.get(kind, ".npz")
    test_file = _write(
        tmp_path / f"test{suffix}",
        kind,
        [test_names[i] for i in test_order],
        test_pred[test_order],
    )
    val_order = slice(None) if bare else slice(None, None, -1)  # bare rows: the data's order
    val_file = _write(
        tmp_path / f"val{suffix}",
        kind,
        [train_names[i] for i in val_rows[val_order]],
        val_pred[val_order],
    )
    order = ["--order", "data"] if bare else []
    runs = tmp_path / "RUNS"
    result = _import(data, runs, "mine", "--test", test_file, "--val", val_file, *order)

    run = runs / "mine"
    saved = load_predictions(run / "test_predictions.npz")
    assert list(saved.file_names) == test_names
    np.testing.assert_array_equal(saved.points, test_pred.astype(np.float32))
    values = gather_points(test_pred.astype(np.float32), contents["indices"])
    np.testing.assert_allclose(read_submission(run / "submission.csv").values, values, atol=5e-5)
    val = load_predictions(run / "val_predictions.npz")
    assert list(val.file_names) == [train_names[i] for i in val_rows]
    np.testing.assert_array_equal(val.points, val_pred.astype(np.float32))

    summary = json.loads((run / "summary.json").read_text())
    score = direct_score(val.file_names, val.points.astype(np.float64), train_points[val_rows])
    assert summary["source"] == "imported" and summary["full_test_points"]
    assert summary["inputs"] == {"test": str(test_file.resolve()), "val": str(val_file.resolve())}
    assert summary["val_score"] == pytest.approx(score, rel=1e-9)
    assert summary["baseline_val_score"] == pytest.approx(_baseline(contents, val_rows), rel=1e-9)
    assert summary["health"]["status"] == "ok"
    assert summary["n_val"] == len(val_rows) and summary["n_train_images"] == len(train_names)
    table = pd.read_csv(runs / "scores.csv")
    assert table.loc[0, "run"] == "mine" and table.loc[0, "submission"] == "mine/submission.csv"
    assert table.loc[0, "val"] == pytest.approx(score, rel=1e-5)
    assert f"val_predictions.npz ({len(val_rows)} of 8 train images)" in result.output
    assert f"val score {score:.4f} on {len(val_rows)} images" in result.output
    assert f"mean-shape baseline's {_baseline(contents, val_rows):.4f}" in result.output
    assert sorted(p.name for p in runs.iterdir()) == ["mine", "scores.csv"]


def test_a_submission_gives_a_run_without_full_test_points(tiny_competition, tmp_path) -> None:
    data, contents = tiny_competition
    test_names, test_points, _ = contents["test"]
    values = np.round(gather_points(_noisy(test_points, 1.0, 0), contents["indices"]), 4)
    order = np.random.default_rng(2).permutation(len(test_names))
    sub = tmp_path / "upload.csv"
    write_submission(sub, [test_names[i] for i in order], values[order])
    result = _import(data, tmp_path / "RUNS", "upload", "--test", sub)
    run = tmp_path / "RUNS" / "upload"
    assert sorted(p.name for p in run.iterdir()) == ["submission.csv", "summary.json"]
    written = read_submission(run / "submission.csv")
    assert list(written.file_names) == test_names
    np.testing.assert_array_equal(written.values, values)
    summary = json.loads((run / "summary.json").read_text())
    assert not summary["full_test_points"] and "val_score" not in summary
    assert any("test_predictions.npz" in note for note in summary["missing"])
    assert "no test_predictions.npz" in result.output and "no val score" in result.output


def test_a_pickle_with_a_code_payload_is_refused_and_runs_nothing(
    tiny_competition, tmp_path
) -> None:
    data, contents = tiny_competition
    marker = Path(f"/tmp/imp_pwned_{uuid.uuid4().hex}")

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "test.pkl"
    evil.write_bytes(
        pickle.dumps({"image_names": contents["test"][0], "landmarks": Payload()}, protocol=4)
    )
    args = ["import-run", "evil", "--data", str(data), "--out", str(tmp_path / "RUNS")]
    fails_cleanly(tmp_path, [*args, "--test", str(evil)], "test.pkl: refused to load", "system")
    assert not marker.exists()
    assert not (tmp_path / "RUNS").exists()


@pytest.mark.parametrize(
    "spoil, needles",
    [
        ("missing", ["test.npz: 1 image(s) of", "test_points.csv missing, the first '001003.jpg'"]),
        ("extra", ["test.npz: 1 image(s) not in", "the first 'stranger.jpg'"]),
        ("wrong_n", ["test.npz: 11 points per image, the data set's landmarks have 12"]),
        ("nan", ["test.npz: image '001004.jpg': point 3 x = nan is not finite"]),
        ("no_names", ["test.npz: the points have no file names", "--order data"]),
        ("val_submission", ["sub.csv: a submission holds only the points"]),
        (
            "val_extra",
            ["val.npz: 1 image(s) not in", "train/landmarks.csv, the first '001000.jpg'"],
        ),
    ],
)
def test_bad_predictions_are_named_and_nothing_is_written(
    tiny_competition, tmp_path, spoil, needles
) -> None:
    data, contents = tiny_competition
    test_names, test_points, _ = contents["test"]
    names, points = list(test_names), _noisy(test_points, 1.0, 0)
    extra = []
    if spoil == "missing":
        names, points = names[:3] + names[4:], np.delete(points, 3, axis=0)
    elif spoil == "extra":
        names, points = [*names, "stranger.jpg"], np.concatenate([points, points[:1]])
    elif spoil == "wrong_n":
        points = points[:, :11]
    elif spoil == "nan":
        points[4, 3, 0] = np.nan
    arrays = {"points": points} if spoil == "no_names" else {"file_names": names, "points": points}
    np.savez(tmp_path / "test.npz", **arrays)
    if spoil == "val_submission":
        write_submission(tmp_path / "sub.csv", names, gather_points(points, contents["indices"]))
        extra = ["--val", str(tmp_path / "sub.csv")]
    elif spoil == "val_extra":
        train_names = contents["train"][0][:3]
        np.savez(tmp_path / "val.npz", file_names=[*train_names, test_names[0]], points=points[:4])
        extra = ["--val", str(tmp_path / "val.npz")]
    (tmp_path / "RUNS").mkdir()
    args = ["import-run", "bad", "--data", str(data), "--out", str(tmp_path / "RUNS")]
    fails_cleanly(tmp_path, [*args, "--test", str(tmp_path / "test.npz"), *extra], *needles)
    assert list((tmp_path / "RUNS").iterdir()) == []


def test_an_existing_run_is_replaced_only_with_force(tiny_competition, tmp_path) -> None:
    data, contents = tiny_competition
    runs, test_names = tmp_path / "RUNS", contents["test"][0]
    first = _write(tmp_path / "a.npz", "npz", test_names, _noisy(contents["test"][1], 1.0, 0))
    second = _write(tmp_path / "b.npz", "npz", test_names, _noisy(contents["test"][1], 3.0, 1))
    _import(data, runs, "mine", "--test", first)
    args = ["import-run", "mine", "--data", str(data), "--out", str(runs), "--test", str(second)]
    fails_cleanly(tmp_path, args, "mine: the run folder exists; use --force to replace it")
    _import(data, runs, "mine", "--test", second, "--force")
    saved = load_predictions(runs / "mine" / "test_predictions.npz")
    np.testing.assert_array_equal(saved.points, np.load(second)["points"].astype(np.float32))
    assert sorted(p.name for p in runs.iterdir()) == ["mine", "scores.csv"]  # no temp left
    assert len(pd.read_csv(runs / "scores.csv")) == 1


def test_imported_runs_blend_and_score_like_trained_ones(tiny_competition, tmp_path) -> None:
    data, contents = tiny_competition
    train_names, train_points, _ = contents["train"]
    test_names, test_points, _ = contents["test"]
    runs = tmp_path / "RUNS"
    for number, sigma in enumerate((1.0, 4.0)):  # validation on different, overlapping images
        test_file = _write(
            tmp_path / f"test{number}.pkl", "pickle", test_names, _noisy(test_points, sigma, 0)
        )
        val_file = _write(
            tmp_path / f"val{number}.pkl",
            "pickle",
            train_names[number:],
            _noisy(train_points[number:], sigma, 1),
        )
        _import(data, runs, f"run{number}", "--test", test_file, "--val", val_file)
    sub = tmp_path / "upload.csv"  # the true test points: a submission only
    write_submission(sub, test_names, gather_points(test_points, contents["indices"]))
    val_file = _write(tmp_path / "val.npz", "npz", train_names, _noisy(train_points, 2.0, 2))
    _import(data, runs, "upload", "--test", sub, "--val", val_file)
    no_val = _write(tmp_path / "t.npz", "npz", test_names, _noisy(test_points, 1.0, 3))
    _import(data, runs, "no_val", "--test", no_val)

    fitted = tmp_path / "fitted.csv"
    result = invoke_ens(["blend", "--fit", str(runs), "--data", str(data), "-o", str(fitted)])
    assert result.exit_code == 0, result.output
    # the runs' shared images, and which run has fewer
    assert (
        "fitted on 7 validation images (the images all runs share: the others have 8, "
        "run1 has 7) (lsq)" in result.output
    )
    weights = json.loads(fitted.with_suffix(".weights.json").read_text())["weights"]
    assert sorted(weights) == ["run0", "run1", "upload"]  # no_val: no validation to fit on
    assert weights["run0"] > weights["run1"]

    regional = tmp_path / "regional.csv"  # from test points, upload's from its submission
    args = ["blend", "--fit", str(runs), "--per-region", "-o", str(regional)]  # data: summary
    assert invoke_ens(args).exit_code == 0
    np.testing.assert_allclose(
        read_submission(regional).values, read_submission(fitted).values, atol=2e-4
    )

    names = ("run0", "run1", "upload", "no_val")
    submissions = [str(runs / name / "submission.csv") for name in names]
    scores = runs / "scores.csv"
    result = invoke_ens(
        ["score", *submissions, str(fitted), "--data", str(data), "--scores", str(scores)]
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(scores).set_index("run")
    assert table.loc["upload", "public"] == pytest.approx(0, abs=1e-8)
    assert table.loc["run0", "public"] < table.loc["run1", "public"]
    assert np.isfinite(table.loc["run0", "val"]) and np.isnan(table.loc["no_val", "val"])


def test_help_explains_every_format() -> None:
    result = invoke_ens(["import-run", "--help"])
    assert result.exit_code == 0
    for needle in ("image_names", "np.savez", "np.save(", "--order data", "Point_M29_Y", "--force"):
        assert needle in result.output


def test_the_health_of_an_imported_run_compares_it_with_the_others(
    tiny_competition, tmp_path
) -> None:
    """Poor when over 2 x the median of the other runs' val scores, as train-all judges."""
    data, contents = tiny_competition
    train_names, train_points, _ = contents["train"]
    test_names, test_points, _ = contents["test"]
    runs = tmp_path / "RUNS"
    for name, sigma in (("a", 1.0), ("b", 1.0), ("c", 3.0)):
        test_file = _write(tmp_path / f"{name}.npz", "npz", test_names, test_points)
        val_file = _write(
            tmp_path / f"{name}_val.npz", "npz", train_names, _noisy(train_points, sigma, 5)
        )
        _import(data, runs, name, "--test", test_file, "--val", val_file)
    health = {
        name: json.loads((runs / name / "summary.json").read_text())["health"] for name in "abc"
    }
    assert health["a"]["status"] == health["b"]["status"] == "ok"
    assert health["c"]["status"] == "poor"
    assert "x the median of the other runs" in health["c"]["reason"]
