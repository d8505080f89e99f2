"""`ens analyze errors`: tail numbers equal numpy, galleries and CSV written, clean errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from analysis.image_errors import image_mse, tail, worst_count
from analysis.sections.errors import tail_sentence
from ensemble.cli import cli
from ensemble.competition.landmark_metrics import per_image_nme
from ensemble.io.landmarks import write_landmarks
from ensemble.io.predictions import save_predictions
from tests.helpers import suspect_case, write_suspect_workspace

RUNS = ["alpha", "beta", "gamma"]


def _hand_tail(mse: np.ndarray) -> dict:
    """P50/P90/P99, worst 1%/5% share and the score without the worst 1%, by hand."""
    values = np.sort(mse)[::-1]
    n = len(values)
    k1, k5 = int(np.ceil(n / 100)), int(np.ceil(5 * n / 100))
    return {
        "score": values.mean(),
        "percentiles": np.percentile(mse, [50, 90, 99]),
        "share1": values[:k1].sum() / values.sum(),
        "share5": values[:k5].sum() / values.sum(),
        "without1": values[k1:].mean(),
        "k1": k1,
        "k5": k5,
    }


def _fkd_like(n: int = 250, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """15-point truth (eyes at 0 and 1, so NME is defined) with some missing labels."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(10, 90, (n, 15, 2))
    truth[:, 0] = rng.uniform(25, 35, (n, 2))
    truth[:, 1] = truth[:, 0] + [30.0, 0.0]
    predicted = truth + rng.normal(0, 1, truth.shape) * np.exp(rng.normal(0, 0.6, n))[:, None, None]
    truth[4, 7] = np.nan  # a missing point
    truth[9, 3, 1] = np.nan  # a missing y only
    return truth, predicted


def test_tail_numbers_equal_a_numpy_computation() -> None:
    truth, predicted = _fkd_like()
    mse = image_mse(predicted, truth)
    squared = (predicted - truth) ** 2
    hand_mse = np.nanmean(squared.reshape(len(truth), -1), axis=1)
    np.testing.assert_allclose(mse, hand_mse, rtol=1e-12)
    nme = per_image_nme(predicted, truth, (0, 1))
    distance = np.linalg.norm(predicted - truth, axis=2)  # NaN where a point is not labelled
    iod = np.linalg.norm(truth[:, 0] - truth[:, 1], axis=1)
    hand_nme = np.nanmean(distance, axis=1) / iod
    np.testing.assert_allclose(nme, hand_nme, rtol=1e-12)
    labelled = ~np.isnan(truth).any(axis=2, keepdims=True)  # a layout without eyes: the box
    low = np.where(labelled, truth, np.inf).min(axis=1)
    high = np.where(labelled, truth, -np.inf).max(axis=1)
    box = np.sqrt(np.prod(high - low, axis=1))
    hand_box = np.nanmean(distance, axis=1) / box
    np.testing.assert_allclose(per_image_nme(predicted, truth, None), hand_box, rtol=1e-12)

    result = tail("alpha", mse, nme)
    hand = _hand_tail(hand_mse)
    assert result.n_images == 250
    assert result.score == pytest.approx(hand["score"], rel=1e-12)
    np.testing.assert_allclose(result.mse_percentiles, hand["percentiles"], rtol=1e-12)
    np.testing.assert_allclose(
        result.nme_percentiles, np.percentile(hand_nme, [50, 90, 99]), rtol=1e-12
    )
    assert result.worst_count == {1: hand["k1"], 5: hand["k5"]} == {1: 3, 5: 13}
    assert result.worst_share[1] == pytest.approx(hand["share1"], rel=1e-12)
    assert result.worst_share[5] == pytest.approx(hand["share5"], rel=1e-12)
    assert result.score_without_worst == pytest.approx(hand["without1"], rel=1e-12)


def test_worst_count_rounds_up_in_integers() -> None:
    assert [worst_count(n, 1) for n in (1, 50, 100, 101, 700, 747)] == [1, 1, 1, 2, 7, 8]
    assert [worst_count(n, 5) for n in (1, 20, 21, 700)] == [1, 1, 2, 35]


def test_a_few_bad_images_are_said_plainly() -> None:
    rng = np.random.default_rng(3)
    mse = np.exp(rng.normal(np.log(8.0), 0.3, 747))
    mse[[5, 300, 600]] = [1500.0, 2500.0, 2000.0]
    result = tail("resnet18", mse)
    assert sorted(result.outliers.tolist()) == [5, 300, 600]
    assert result.outliers[0] == 300  # worst first
    share = mse[[5, 300, 600]].sum() / mse.sum()
    assert result.outlier_share == pytest.approx(share)
    sentence = tail_sentence(result, "validation")
    assert sentence.startswith(f"3 images (0.4%) carry {round(100 * share)}% of resnet18's")
    assert "validation MSE" in sentence
    quiet = tail("small", np.exp(rng.normal(0, 0.3, 200)))
    assert len(quiet.outliers) == 0
    assert tail_sentence(quiet, "test").startswith("No outlier image in small's test MSE")


def _add_test_split(root: Path, n: int = 30, runs: list[str] = RUNS) -> None:
    """DATA/test/landmarks.csv, a few test images, and test predictions for every run."""
    rng = np.random.default_rng(5)
    names = [f"t{i:04d}.jpg" for i in range(n)]
    truth = rng.uniform(25, 65, (n, 12, 2))
    images = root / "data" / "test" / "images"
    images.mkdir(parents=True)
    for name in names[:10]:
        Image.fromarray(rng.integers(0, 255, (80, 100, 3), dtype=np.uint8)).save(images / name)
    write_landmarks(root / "data" / "test" / "landmarks.csv", names, truth)
    predictions = truth + rng.normal(0, 2, (len(runs), *truth.shape))
    predictions[:, 4] += 60.0  # one test image every run gets wrong
    for number, run in enumerate(runs):
        save_predictions(root / "runs" / run / "test_predictions.npz", names, predictions[number])


@pytest.fixture
def workspace(tmp_path: Path):
    """DATA and RUNS with three runs, planted wrong labels, hard images and a test split."""
    case = suspect_case()
    write_suspect_workspace(tmp_path, case, RUNS)
    _add_test_split(tmp_path)
    return tmp_path, case


def _tree(folder: Path) -> dict[str, int]:
    return {
        str(path.relative_to(folder)): path.stat().st_mtime_ns for path in sorted(folder.rglob("*"))
    }


def test_errors_command_writes_csv_and_galleries(workspace) -> None:
    root, case = workspace
    out = root / "out"
    before = _tree(root / "data") | _tree(root / "runs")
    args = ["analyze", "errors", "--runs", str(root / "runs"), "--data", str(root / "data")]
    result = CliRunner().invoke(cli, [*args, "-o", str(out), "--gallery", "6"])
    assert result.exit_code == 0, result.output
    for name in ("suspect_labels.csv", "suspect_labels.png", "errors_worst_val.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "errors_worst_test.png").stat().st_size > 0
    assert _tree(root / "data") | _tree(root / "runs") == before  # inputs untouched
    text = result.output
    assert "Suspect labels: 5 of 200 validation images" in text
    assert "carry" in text and "of alpha's validation MSE" in text
    assert "of alpha's test MSE" in text
    assert "P50" in text and "worst 1% share" in text
    with open(out / "suspect_labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["file_name", "label_error", "spread", "score", "suspect"]
    assert {row["file_name"] for row in rows if row["suspect"] == "1"} == {
        case["names"][i] for i in case["planted"]
    }
    image = Image.open(out / "suspect_labels.png")
    assert image.size[0] > 600


def test_full_report_has_the_section_with_numpy_numbers(workspace) -> None:
    root, case = workspace
    out = root / "report"
    args = ["analyze", "--runs", str(root / "runs"), "--data", str(root / "data"), "-o", str(out)]
    result = CliRunner().invoke(cli, [*args, "--bootstrap", "20"])
    assert result.exit_code == 0, result.output
    assert "4. Where the error lives" in result.output
    assert "5 suspect labels (2.5% of 200 validation images) carry" in result.output
    summary = json.loads((out / "summary.json").read_text())["sections"]["errors"]
    assert summary["available"]
    assert summary["suspect_labels"]["n_suspect"] == 5
    assert summary["suspect_labels"]["consensus"] == "median"
    assert (out / "suspect_labels.csv").is_file()
    for plot in summary["plots"]:
        assert f'alt="{plot}"' in (out / "report.html").read_text()
    for number, run in enumerate(RUNS):
        squared = (case["predictions"][number] - case["labels"]) ** 2
        hand = _hand_tail(squared.reshape(200, -1).mean(axis=1))
        numbers = summary["validation"]["runs"][run]
        assert numbers["score"] == pytest.approx(hand["score"], rel=1e-6)
        assert list(numbers["mse_percentiles"].values()) == pytest.approx(
            hand["percentiles"], rel=1e-6
        )
        assert numbers["worst"]["1%"]["share"] == pytest.approx(hand["share1"], rel=1e-6)
        assert numbers["worst"]["5%"]["share"] == pytest.approx(hand["share5"], rel=1e-6)
        assert numbers["score_without_worst_1%"] == pytest.approx(hand["without1"], rel=1e-6)
        # 12 points, no layout file: no eyes, so NME divides by the true points' bounding box
        truth, predicted = case["labels"], case["predictions"][number]
        box = np.sqrt(np.prod(truth.max(axis=1) - truth.min(axis=1), axis=1))
        hand_nme = np.linalg.norm(predicted - truth, axis=2).mean(axis=1) / box
        assert list(numbers["nme_percentiles"].values()) == pytest.approx(
            np.percentile(hand_nme, [50, 90, 99]), rel=1e-4
        )
    assert summary["test"]["worst_images"][0]["file_name"] == "t0004.jpg"
    assert "blend (equal weights)" in summary["validation"]["runs"]


def test_one_run_with_tta_spread(tmp_path: Path) -> None:
    case = suspect_case(n_runs=1)
    write_suspect_workspace(tmp_path, case, ["solo"], with_tta=True)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        ["analyze", "errors", "--runs", str(tmp_path / "runs"), "-o", str(out), "--data"]
        + [str(tmp_path / "data")],
    )
    assert result.exit_code == 0, result.output
    assert "flip-TTA" in result.output
    assert "Test split: not analysed" in result.output
    with open(out / "suspect_labels.csv", newline="") as handle:
        rows = {row["file_name"]: row for row in csv.DictReader(handle)}
    for row, spread in enumerate(case["tta"]):
        assert float(rows[case["names"][row]]["spread"]) == pytest.approx(spread, rel=1e-6)
    flagged = {name for name, row in rows.items() if row["suspect"] == "1"}
    assert flagged == {case["names"][i] for i in case["planted"]}


def test_prediction_for_an_unlabelled_file_is_a_clean_error(workspace) -> None:
    root, case = workspace
    names = [*case["names"][:10], "stranger.jpg"]
    for run in RUNS:
        save_predictions(root / "runs" / run / "val_predictions.npz", names, np.zeros((11, 12, 2)))
    result = CliRunner().invoke(
        cli,
        ["analyze", "errors", "--runs", str(root / "runs"), "--data", str(root / "data")]
        + ["-o", str(root / "out")],
    )
    assert result.exit_code == 1
    assert "not in the labels" in result.output and "stranger.jpg" in result.output
    assert "Traceback" not in result.output
    assert not (root / "out" / "suspect_labels.csv").exists()


@pytest.mark.parametrize("target", ["runs", "data", "data/train", "runs/alpha"])
def test_never_writes_into_its_inputs(workspace, target: str) -> None:
    root, _ = workspace
    before = _tree(root)
    result = CliRunner().invoke(
        cli,
        ["analyze", "errors", "--runs", str(root / "runs"), "--data", str(root / "data")]
        + ["-o", str(root / target)],
    )
    assert result.exit_code == 1, result.output
    assert "refusing to write the output here" in result.output
    assert _tree(root) == before


def test_missing_inputs_say_what_is_missing(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["analyze", "errors"])
    assert result.exit_code == 1
    assert "give --runs RUNS" in result.output and "Traceback" not in result.output


def test_output_before_a_subcommand_that_ignores_it_is_refused(workspace) -> None:
    root, _ = workspace
    result = CliRunner().invoke(
        cli, ["analyze", "-o", str(root / "out"), "points", "--runs", str(root / "runs")]
    )
    assert result.exit_code == 2
    assert "--output has no effect on `ens analyze points`" in result.output
    inherited = CliRunner().invoke(
        cli,
        ["analyze", "-o", str(root / "out"), "--runs", str(root / "runs"), "errors", "--data"]
        + [str(root / "data")],
    )
    assert inherited.exit_code == 0, inherited.output
    assert (root / "out" / "suspect_labels.csv").is_file()
