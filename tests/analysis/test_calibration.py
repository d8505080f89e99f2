"""`ens analyze calibration`: coverage and reliability bins equal numpy, verdicts, clean errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from analysis.calibration import reliability, verdict
from analysis.sections.calibration import calibration_section
from ensemble.cli import cli
from ensemble.io.landmarks import read_landmarks
from ensemble.io.predictions import load_predictions, save_predictions

N_POINTS = 12
SPLITS = {"validation": ("train", "val_predictions.npz"), "test": ("test", "test_predictions.npz")}


def _draw(rng: np.random.Generator, kind: str, scale: np.ndarray) -> np.ndarray:
    """Errors (n, N, 2) of each coordinate: N(0, scale²) or Laplace(0, scale)."""
    spread = np.repeat(scale[..., None], 2, axis=-1)
    if kind == "laplace":
        return rng.laplace(0.0, spread)
    return rng.normal(0.0, spread)


def _write_labels(path: Path, names: list[str], points: np.ndarray) -> None:
    """A landmarks TSV with empty cells where `points` is NaN (a missing label)."""
    header = ["file_name"] + [f"Point_M{i}_{axis}" for i in range(N_POINTS) for axis in "XY"]
    rows = [
        "\t".join([name, *("" if np.isnan(v) else f"{v:.6f}" for v in row.ravel())])
        for name, row in zip(names, points, strict=True)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(["\t".join(header), *rows]) + "\n")


def make_workspace(
    root: Path,
    runs: dict[str, tuple[str, float]],
    sizes: tuple[int, int] = (200, 100),
    levels: np.ndarray | None = None,
    missing: bool = True,
    seed: int = 0,
) -> tuple[Path, Path]:
    """DATA (train and test truth) and RUNS; run -> (kind or "none", sigma / true scale).

    Each run's errors are drawn with a true scale per point, and its sigma is that scale times
    the factor. With `levels`, the scale cycles through those values over the points.
    """
    rng = np.random.default_rng(seed)
    data, runs_dir = root / "data", root / "runs"
    truth = {}
    for split, n in zip(SPLITS, sizes, strict=True):
        folder = SPLITS[split][0]
        names = [f"{folder[:2]}{i:05d}.jpg" for i in range(n)]
        points = rng.uniform(20, 180, (n, N_POINTS, 2))
        if missing:
            points[3, 5] = np.nan  # a missing point
            points[7, 2, 1] = np.nan  # a missing y only
        _write_labels(data / folder / "landmarks.csv", names, points)
        truth[split] = (names, np.nan_to_num(points, nan=100.0))
    for name, (kind, factor) in runs.items():
        folder = runs_dir / name
        folder.mkdir(parents=True)
        (folder / "config.toml").write_text(f'name = "{name}"\nuncertainty = "{kind}"\n')
        (folder / "summary.json").write_text(json.dumps({"sigma_temperature": 0.8}))
        for split, (names, points) in truth.items():
            shape = (len(names), N_POINTS)
            if levels is None:
                scale = np.exp(rng.normal(1.0, 0.5, shape))
            else:
                scale = levels[np.arange(math.prod(shape)) % len(levels)].reshape(shape)
            errors = _draw(rng, "gaussian" if kind == "none" else kind, scale)
            sigma = None if kind == "none" else factor * scale
            save_predictions(folder / SPLITS[split][1], names, points + errors, sigma=sigma)
    return runs_dir, data


def _arrays(runs_dir: Path, data: Path, run: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(errors (n, N, 2) float64, sigma (n, N)) read back from the files, as the section reads."""
    folder, file = SPLITS[split]
    predicted = load_predictions(runs_dir / run / file)
    labels = read_landmarks(data / folder / "landmarks.csv", allow_missing=True)
    position = {name: row for row, name in enumerate(labels.file_names)}
    truth = labels.points[[position[name] for name in predicted.file_names]]
    return predicted.points.astype(np.float64) - truth, predicted.sigma.astype(np.float64)


def _hand(errors: np.ndarray, sigma: np.ndarray, kind: str) -> dict:
    """Coverage of the 68% and 95% intervals, mean sigma and NLL, from the definitions."""
    scale = np.repeat(sigma[..., None], 2, axis=-1)
    present = ~np.isnan(errors)
    e, s = np.abs(errors[present]), scale[present]
    if kind == "gaussian":
        z = {68: stats.norm.ppf(0.84), 95: stats.norm.ppf(0.975)}
        terms = 0.5 * (e / s) ** 2 + np.log(s) + 0.5 * np.log(2 * np.pi)
    else:
        z = {68: -np.log(0.32), 95: -np.log(0.05)}  # P(|e| <= t b) = 1 - exp(-t)
        terms = e / s + np.log(2 * s)
    return {
        **{f"coverage_{level}": np.mean(e <= z[level] * s) for level in (68, 95)},
        "mean_sigma": s.mean(),
        "nll": terms.mean(),
        "n_coordinates": len(e),
    }


def test_coverage_nll_and_bins_equal_a_numpy_computation(tmp_path: Path) -> None:
    runs_dir, data = make_workspace(
        tmp_path, {"gau": ("gaussian", 1.0), "lap": ("laplace", 1.2), "plain": ("none", 1.0)}
    )
    section = calibration_section(runs_dir, data, tmp_path / "out")
    assert section.available, section.missing
    summary = section.summary
    assert summary["runs_without_sigma"] == ["plain"]
    assert summary["test_missing"] is None
    for run, kind in (("gau", "gaussian"), ("lap", "laplace")):
        result = summary["runs"][run]
        assert result["kind"] == kind and result["temperature"] == 0.8
        for split in SPLITS:
            errors, sigma = _arrays(runs_dir, data, run, split)
            hand = _hand(errors, sigma, kind)
            got = result[split]
            assert got["n_coordinates"] == hand["n_coordinates"]
            for key in ("coverage_68", "coverage_95", "mean_sigma", "nll"):
                assert got[key] == pytest.approx(hand[key], rel=1e-12), (run, split, key)
        # Bins: equal counts of the labelled coordinates; RMS from the edges the section reports.
        errors, sigma = _arrays(runs_dir, data, run, "validation")
        bins = result["validation"]["reliability"]
        scale = np.repeat(sigma[..., None], 2, axis=-1)
        present = ~np.isnan(errors)
        e, s = errors[present], scale[present]
        edges = np.array(bins["edges"])
        assert len(bins["rms"]) == 10 and sum(bins["count"]) == len(e)
        assert edges[0] == s.min() and edges[-1] == s.max()
        for b in range(10):
            inside = (s >= edges[b]) & ((s < edges[b + 1]) | (b == 9))
            assert bins["count"][b] == inside.sum()
            assert abs(inside.sum() - len(e) / 10) <= 2  # x and y share a sigma
            assert bins["rms"][b] == pytest.approx(np.sqrt(np.mean(e[inside] ** 2)), rel=1e-12)
            assert bins["sigma"][b] == pytest.approx(np.sqrt(np.mean(s[inside] ** 2)), rel=1e-12)
    text = "\n".join(getattr(block, "text", "") for block in section.blocks)
    assert "Without sigma (not shown): plain" in text
    assert (tmp_path / "out" / "calibration_reliability.png").stat().st_size > 0


def test_bins_of_ten_sigma_levels_are_those_levels(tmp_path: Path) -> None:
    levels = 1.5 ** np.arange(10)
    runs_dir, data = make_workspace(
        tmp_path, {"gau": ("gaussian", 1.0)}, levels=levels, missing=False
    )
    errors, sigma = _arrays(runs_dir, data, "gau", "validation")
    bins = calibration_section(runs_dir, data).summary["runs"]["gau"]["validation"]["reliability"]
    np.testing.assert_allclose(bins["sigma"], levels, rtol=1e-6)
    for b, level in enumerate(levels):
        mask = np.isclose(sigma, level, rtol=1e-6)
        assert bins["count"][b] == 2 * mask.sum() == 2 * 200 * N_POINTS // 10
        assert bins["rms"][b] == pytest.approx(np.sqrt(np.mean(errors[mask] ** 2)), rel=1e-12)
    direct = reliability(errors, sigma, n_bins=5)  # two levels per bin
    np.testing.assert_allclose(direct.count, [960] * 5)


@pytest.mark.parametrize(
    ("factor", "word"),
    [(0.5, "over-confident"), (1.0, "well calibrated"), (2.0, "under-confident")],
)
@pytest.mark.parametrize("kind", ["gaussian", "laplace"])
def test_sigma_too_small_is_over_confident(tmp_path: Path, kind: str, factor: float, word: str):
    runs_dir, data = make_workspace(tmp_path, {"r": (kind, factor)}, sizes=(300, 300))
    section = calibration_section(runs_dir, data)
    result = section.summary["runs"]["r"]
    assert result["validation"]["verdict"] == result["test"]["verdict"] == word
    line = next(b.text for b in section.blocks if getattr(b, "text", "").startswith("r ("))
    assert line.startswith(f"r ({kind}): {word} on validation")
    assert f"; {word} on test" in line
    assert section.headline == f"r: {word} on validation, {word} on test"


def test_verdict_words_and_the_three_point_band() -> None:
    assert verdict({0.68: 0.65, 0.95: 0.98}) == "well calibrated"
    assert verdict({0.68: 0.40, 0.95: 0.70}) == "over-confident"
    assert verdict({0.68: 0.80, 0.95: 0.999}) == "under-confident"
    assert verdict({0.68: 0.67, 0.95: 0.985}) == "under-confident at 95%"
    assert verdict({0.68: 0.75, 0.95: 0.90}) == "over-confident at 95%, under-confident at 68%"
    assert verdict({0.68: math.nan, 0.95: math.nan}) == "n/a"


def test_runs_without_sigma_say_how_to_get_it(tmp_path: Path) -> None:
    runs_dir, data = make_workspace(tmp_path, {"plain": ("none", 1.0)})
    section = calibration_section(runs_dir, data)
    assert not section.available
    assert "no run in" in section.missing and "has sigma" in section.missing
    assert 'uncertainty = "laplace"' in section.missing
    result = CliRunner().invoke(
        cli, ["analyze", "calibration", "--runs", str(runs_dir), "--data", str(data)]
    )
    assert result.exit_code == 1 and "no run in" in result.output
    assert "Traceback" not in result.output
    missing = CliRunner().invoke(cli, ["analyze", "calibration"])
    assert missing.exit_code == 1 and "give --runs RUNS" in missing.output


def test_cli_prints_the_section_and_writes_the_plot(tmp_path: Path) -> None:
    runs_dir, data = make_workspace(tmp_path, {"gau": ("gaussian", 1.0), "lap": ("laplace", 0.5)})
    out = tmp_path / "report"
    args = ["analyze", "calibration", "--runs", str(runs_dir), "--data", str(data), "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (out / "calibration_reliability.png").stat().st_size > 0
    assert "Calibration of the predicted sigma" in result.output
    assert "In short: gau: well calibrated on validation" in result.output
    assert "lap: over-confident on validation" in result.output
    full = CliRunner().invoke(
        cli,
        ["analyze", "--runs", str(runs_dir), "--data", str(data), "-o", str(tmp_path / "f")]
        + ["--bootstrap", "20", "--gallery", "1"],
    )
    assert full.exit_code == 0, full.output
    summary = json.loads((tmp_path / "f" / "summary.json").read_text())["sections"]
    assert summary["calibration"]["plots"] == ["calibration_reliability.png"]
    assert summary["calibration"]["runs"]["lap"]["validation"]["verdict"] == "over-confident"
    html = (tmp_path / "f" / "report.html").read_text()
    assert 'alt="calibration_reliability.png"' in html


def test_sigma_of_the_wrong_shape_is_a_clean_error(tmp_path: Path) -> None:
    runs_dir, data = make_workspace(tmp_path, {"gau": ("gaussian", 1.0)}, sizes=(20, 10))
    path = runs_dir / "gau" / "val_predictions.npz"
    with np.load(path) as loaded:
        arrays = dict(loaded)
    arrays["sigma"] = np.ones((20, N_POINTS + 1), np.float32)
    np.savez(path, **arrays)
    result = CliRunner().invoke(
        cli, ["analyze", "calibration", "--runs", str(runs_dir), "--data", str(data)]
    )
    assert result.exit_code == 1
    assert str(path) in result.output and "sigma must be positive, of shape" in result.output
    assert "Traceback" not in result.output


def test_sigma_without_a_known_kind_is_a_clean_error(tmp_path: Path) -> None:
    runs_dir, data = make_workspace(tmp_path, {"gau": ("gaussian", 1.0)}, sizes=(20, 10))
    (runs_dir / "gau" / "config.toml").write_text('name = "gau"\n')
    result = CliRunner().invoke(
        cli, ["analyze", "calibration", "--runs", str(runs_dir), "--data", str(data)]
    )
    assert result.exit_code == 1
    assert "config.toml" in result.output and "has sigma but `uncertainty` is None" in result.output


def test_a_broken_summary_is_a_clean_error(tmp_path: Path) -> None:
    runs_dir, data = make_workspace(tmp_path, {"gau": ("gaussian", 1.0)}, sizes=(20, 10))
    (runs_dir / "gau" / "summary.json").write_text("{")
    result = CliRunner().invoke(
        cli, ["analyze", "calibration", "--runs", str(runs_dir), "--data", str(data)]
    )
    assert result.exit_code == 1
    assert "summary.json" in result.output and "not a valid JSON object" in result.output
    assert "Traceback" not in result.output
