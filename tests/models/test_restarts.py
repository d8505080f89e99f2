"""Runs judged against the mean shape and their siblings; a poor run is trained again."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from ensemble.cli import cli
from ensemble.competition.health import POOR_BASELINE_SHARE, POOR_SIBLING_FACTOR, judge, judge_runs
from ensemble.io.scores_table import read_scores
from tests.helpers import write_faces

# "stuck" learns nothing (lr 1e-9: it stays at the mean-shape start); "learns" does.
CONFIG = """
[defaults]
crop_size = 24
batch_size = 8
val_fraction = 0.2
device = "cpu"
restarts = {restarts}

[[run]]
name = "learns"
arch = "small_cnn_basic"
stages = [{{epochs = 4, optimizer = "adam", lr = 0.003, warmup_epochs = 0.5}}]

[[run]]
name = "stuck"
arch = "small_cnn_basic"
stages = [{{epochs = 1, optimizer = "adam", lr = 1e-9}}]
"""


def test_the_baseline_rule_and_the_sibling_rule() -> None:
    assert judge(4.0, 10.0, []).status == "ok"
    at_half = judge(POOR_BASELINE_SHARE * 10.0, 10.0, [])
    assert at_half.poor and "mean-shape baseline" in at_half.reason
    assert judge(POOR_BASELINE_SHARE * 10.0 - 1e-9, 10.0, []).status == "ok"
    # against the siblings: over twice their median (3.0 of [1, 3, 100]) is poor
    assert judge(POOR_SIBLING_FACTOR * 3.0, 100.0, [1.0, 3.0, 100.0]).status == "ok"
    over = judge(POOR_SIBLING_FACTOR * 3.0 + 0.01, 100.0, [1.0, 3.0, 100.0])
    assert over.poor and "median of the other runs (3)" in over.reason
    assert judge(5.0, None, []).status == "ok"  # nothing to compare with
    verdicts = judge_runs(
        {
            "a": {"val_score": 10.0, "baseline_val_score": 100.0},
            "b": {"val_score": 11.0, "baseline_val_score": 100.0},
            "c": {"val_score": 30.0, "baseline_val_score": 100.0},
        }
    )
    assert [verdicts[n].status for n in "abc"] == ["ok", "ok", "poor"]


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """A tiny drawn-face dataset."""
    return write_faces(tmp_path_factory.mktemp("health") / "data", n_train=40, n_test=4)


def train_all(faces: Path, root: Path, restarts: int):
    """`ens train-all` of CONFIG; the CLI result."""
    config = root / "runs.toml"
    config.write_text(CONFIG.format(restarts=restarts))
    args = ["train-all", "--data", str(faces), "--config", str(config), "--out", str(root / "R")]
    return CliRunner().invoke(cli, [*args, "--quiet"])


def test_a_run_stuck_at_the_mean_shape_is_poor_and_trained_again_with_the_next_seed(
    faces: Path, tmp_path: Path
) -> None:
    result = train_all(faces, tmp_path, restarts=1)
    assert result.exit_code == 0, result.output
    stuck = json.loads((tmp_path / "R" / "stuck" / "summary.json").read_text())
    learns = json.loads((tmp_path / "R" / "learns" / "summary.json").read_text())
    assert learns["health"]["status"] == "ok"
    assert stuck["health"]["status"] == "poor"
    assert "mean-shape baseline" in stuck["health"]["reason"]
    assert [a["seed"] for a in stuck["attempts"]] == [0, 1]
    kept = [a for a in stuck["attempts"] if a["kept"]]
    assert len(kept) == 1 and kept[0]["seed"] == stuck["seed"]
    assert kept[0]["val_score"] == min(a["val_score"] for a in stuck["attempts"])
    assert stuck["attempts"][0]["health"]["status"] == "poor"
    lost = [a["seed"] for a in stuck["attempts"] if not a["kept"]][0]
    discarded = tmp_path / "R" / "stuck" / "discarded" / f"seed{lost}"
    assert (discarded / "summary.json").is_file() and (discarded / "metrics.csv").is_file()
    assert not (discarded / "checkpoints").exists()
    assert not (tmp_path / "R" / ".restarts").exists()
    assert "learns" not in {a.get("run") for a in stuck["attempts"]}
    assert "attempts" not in learns  # an ok run is not trained again
    scores = read_scores(tmp_path / "R" / "scores.csv").set_index("run")["val"]
    assert scores["stuck"] == pytest.approx(stuck["val_score"])
    assert "poor" in result.output and "training it again with seed 1" in result.output


def test_restarts_zero_keeps_the_poor_run_as_it_is(faces: Path, tmp_path: Path) -> None:
    result = train_all(faces, tmp_path, restarts=0)
    assert result.exit_code == 0, result.output
    stuck = json.loads((tmp_path / "R" / "stuck" / "summary.json").read_text())
    assert stuck["health"]["status"] == "poor" and "attempts" not in stuck
    assert not (tmp_path / "R" / "stuck" / "discarded").exists()


def test_blend_names_the_poor_run_and_what_it_costs(faces: Path, tmp_path: Path) -> None:
    assert train_all(faces, tmp_path, restarts=0).exit_code == 0
    runs = tmp_path / "R"
    learns = json.loads((runs / "learns" / "summary.json").read_text())
    stuck = json.loads((runs / "stuck" / "summary.json").read_text())
    weights = [1 / learns["val_score"], 1 / stuck["val_score"]]
    result = CliRunner().invoke(
        cli, ["blend", "--weights", str(runs / "scores.csv"), "-o", str(tmp_path / "w.csv")]
    )
    assert result.exit_code == 0, result.output
    assert f"poor run: stuck ({stuck['health']['reason']}); weight" in result.output
    share = weights[1] / sum(weights)
    assert f"weight {share:.4f}" in result.output
    # without the poor run the blend is the other run alone: its own val score
    cost = re.search(
        r"scores ([\d.]+) with stuck and ([\d.]+) without .*: it (costs|gains)", result.output
    )
    assert cost is not None, result.output
    assert float(cost.group(2)) == pytest.approx(learns["val_score"], rel=1e-5)
    fitted = CliRunner().invoke(cli, ["blend", "--fit", str(runs), "-o", str(tmp_path / "f.csv")])
    assert fitted.exit_code == 0, fitted.output
    assert "poor run: stuck" in fitted.output
    weight = json.loads((tmp_path / "f.weights.json").read_text())["weights"]["stuck"]
    if weight < 1e-6:
        assert "the fit gives stuck no weight" in fitted.output
    else:
        assert "without (the fit redone)" in fitted.output
    saved = json.loads((tmp_path / "f.weights.json").read_text())
    assert list(saved["poor_runs"]) == ["stuck"]
    assert saved["val_score_without_poor_runs"] == pytest.approx(learns["val_score"], rel=1e-6)
