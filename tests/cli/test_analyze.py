"""`ens analyze`: the report renders with any section missing; bad scores.csv is a clean error."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ensemble.cli import cli
from ensemble.competition.metric import validation_score
from ensemble.competition.subsets import draw_point_subsets
from ensemble.io.landmarks import write_landmarks
from ensemble.io.predictions import save_predictions
from ensemble.io.test_points import read_test_points, write_test_points

N_POINTS = 12


def _data(root: Path, n_images: int = 24, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    names = [f"{i:05d}.jpg" for i in range(n_images)]
    truth = np.rint(rng.uniform(10, 90, (n_images, N_POINTS, 2)))
    write_landmarks(root / "train" / "landmarks.csv", names, truth, integer=True)
    (root / "test").mkdir(parents=True)
    test_names = [f"t{i:04d}.jpg" for i in range(200)]
    write_test_points(
        root / "test" / "test_points.csv", test_names, draw_point_subsets(rng, 200, N_POINTS, 5)
    )
    return names, truth


def _runs(root: Path, names: list[str], truth: np.ndarray, seed: int = 1) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    scores = {}
    for number, run in enumerate(["alpha", "beta", "gamma"]):
        points = (truth + rng.normal(0, 1 + number, truth.shape)).astype(np.float32)
        save_predictions(root / run / "val_predictions.npz", names, points)
        scores[run] = validation_score(np.array(names, dtype=object), points, truth)
    return scores


def _scores(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


GOOD_SCORES = (
    "run,submission,val,public,private\n"
    "alpha,a.csv,1.0,1.1,1.2\n"
    "beta,b.csv,2.0,2.2,2.1\n"
    "gamma,c.csv,3.0,3.1,3.3\n"
    "delta,d.csv,4.0,4.3,4.0\n"
    "omega,e.csv,2.5,,\n"
)


@pytest.fixture
def workspace(tmp_path: Path):
    """A data folder, three run folders with validation predictions, and a scores.csv."""
    data = tmp_path / "data"
    names, truth = _data(data)
    runs = tmp_path / "runs"
    scores = _runs(runs, names, truth)
    _scores(tmp_path / "scores.csv", GOOD_SCORES)
    labels_only = tmp_path / "labels_only" / "train"  # truth without a test/ folder
    labels_only.mkdir(parents=True)
    (labels_only / "landmarks.csv").write_bytes((data / "train" / "landmarks.csv").read_bytes())
    return tmp_path, scores


@pytest.mark.parametrize(
    "present",
    [(), ("uniformity",), ("leaderboard",), ("points",), ("uniformity", "leaderboard", "points")],
)
def test_report_renders_with_any_section_missing(workspace, present) -> None:
    root, run_scores = workspace
    args = ["analyze", "-o", str(root / "report"), "--bootstrap", "50"]
    if "uniformity" in present:
        args += ["--test-points", str(root / "data" / "test" / "test_points.csv")]
        args += ["--n-points", str(N_POINTS)]
    if "leaderboard" in present:
        args += ["--scores", str(root / "scores.csv")]
    if "points" in present:
        args += ["--runs", str(root / "runs"), "--data", str(root / "labels_only")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    html = (root / "report" / "report.html").read_text()
    summary = json.loads((root / "report" / "summary.json").read_text())
    assert html.count("Not available:") == 5 - len(present) - ("points" in present)
    for key in ("uniformity", "leaderboard", "points"):
        section = summary["sections"][key]
        assert section["available"] == (key in present)
        for plot in section["plots"]:
            assert (root / "report" / plot).stat().st_size > 0
            assert f'alt="{plot}"' in html  # embedded, not linked
    assert "http://" not in html and "https://" not in html
    if "points" in present:
        points = summary["sections"]["points"]
        for run, score in run_scores.items():
            assert points["runs"][run]["score"] == pytest.approx(score, rel=1e-12)
        assert len(points["runs"]["alpha"]["point_mse_dense"]) == N_POINTS
        assert points["best_run"] == "alpha"
    if "uniformity" in present:
        assert summary["sections"]["uniformity"]["n_rows"] == 200
        assert sum(summary["sections"]["uniformity"]["counts"]) == 200 * 5
    if "leaderboard" in present:
        fit = summary["sections"]["leaderboard"]["fits"]["public"]
        assert fit["ols"]["n"] == 4 and fit["predicted"][0]["run"] == "omega"


def test_subcommands_print_one_section(workspace) -> None:
    root, _ = workspace
    runner = CliRunner()
    uniform = runner.invoke(cli, ["analyze", "uniformity", "--data", str(root / "data")])
    assert uniform.exit_code == 0, uniform.output
    assert "Chi-square" in uniform.output and "N from header of" in uniform.output
    lines = runner.invoke(cli, ["analyze", "leaderboard", "--scores", str(root / "scores.csv")])
    assert lines.exit_code == 0, lines.output
    assert "Theil-Sen" in lines.output and "omega" in lines.output
    points = runner.invoke(
        cli, ["analyze", "--runs", str(root / "runs"), "points", "--data", str(root / "data")]
    )
    assert points.exit_code == 0, points.output
    assert "Hardest landmarks" in points.output and "equal-weight blend" in points.output
    missing = runner.invoke(cli, ["analyze", "points"])
    assert missing.exit_code == 1 and "give --runs RUNS" in missing.output
    assert runner.invoke(cli, ["analyze"]).exit_code == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("run,val,private\na,1,1\nb,2,2\nc,3,3\n", "no 'public' column"),
        ("run,public,private\na,1,1\nb,2,2\nc,3,3\n", "no 'val' column"),
        ("run,val,public\na,1,1\nb,two,2\nc,3,3\n", "line 3: non-numeric value 'two'"),
        ("run,val,public\na,1,1\nb,2,\nc,3,3\n", "only 2 row(s) have both 'val' and 'public'"),
        ("run,val,public,bogus\na,1,1,1\n", "unknown column(s) ['bogus']"),
    ],
)
def test_bad_scores_file_gets_a_clear_message(tmp_path: Path, text: str, message: str) -> None:
    path = _scores(tmp_path / "scores.csv", text)
    result = CliRunner().invoke(cli, ["analyze", "leaderboard", "--scores", str(path)])
    assert result.exit_code in (1, 2)
    assert message in result.output and str(path) in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not a raised error


def test_full_report_keeps_going_when_scores_are_too_thin(workspace) -> None:
    root, _ = workspace
    thin = _scores(root / "thin.csv", "run,val,public\na,1,1\nb,2,2\n")
    result = CliRunner().invoke(
        cli, ["analyze", "--scores", str(thin), "-o", str(root / "out"), "--bootstrap", "20"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((root / "out" / "summary.json").read_text())
    assert "a line needs three or more" in summary["sections"]["leaderboard"]["missing"]


def test_mismatched_labels_are_a_clean_error(workspace) -> None:
    root, _ = workspace
    other = root / "other"
    write_landmarks(
        other / "train" / "landmarks.csv", ["zzz.jpg"], np.zeros((1, N_POINTS, 2)), integer=True
    )
    result = CliRunner().invoke(
        cli, ["analyze", "points", "--runs", str(root / "runs"), "--data", str(other)]
    )
    assert result.exit_code == 1
    assert "not in the labels" in result.output and "Traceback" not in result.output


def test_uniformity_of_a_single_landmark_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "test_points.csv"
    path.write_text("file_name\tpoint_index_list\na.jpg\t[0]\n")
    result = CliRunner().invoke(
        cli, ["analyze", "uniformity", "--test-points", str(path), "--n-points", "1"]
    )
    assert result.exit_code == 1
    assert "needs at least 2 landmarks" in result.output
    assert isinstance(result.exception, SystemExit)


def test_uniformity_uses_the_datasets_own_layout(tmp_path) -> None:
    _data(tmp_path / "data")
    regions = {"upper face": [0, 4], "lower face": [5, 11]}
    (tmp_path / "data" / "train" / "layout.json").write_text(json.dumps({"regions": regions}))
    indices = read_test_points(tmp_path / "data" / "test" / "test_points.csv").indices
    observed = {
        name: int(((indices >= first) & (indices <= last)).sum())
        for name, (first, last) in regions.items()
    }
    result = CliRunner().invoke(cli, ["analyze", "uniformity", "--data", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    table = result.output.split("Counts per region")[1].strip().splitlines()[2:]
    rows = [re.split(r"\s{2,}", line.strip()) for line in table]
    assert {row[0]: int(row[2].replace(",", "")) for row in rows} == observed
    report = tmp_path / "report"
    result = CliRunner().invoke(
        cli, ["analyze", "--data", str(tmp_path / "data"), "-o", str(report)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((report / "summary.json").read_text())
    regions_read = summary["sections"]["uniformity"]["regions"]
    assert {region["name"]: region["observed"] for region in regions_read} == observed
