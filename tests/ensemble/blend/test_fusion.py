"""Inverse-variance fusion of runs with per-landmark sigma (`ens blend --method uncertainty`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from ensemble.blend.fusion import GAMMAS, fit_gamma, fuse, fused_weights
from ensemble.cli import cli
from ensemble.io.landmarks import write_landmarks
from ensemble.io.predictions import load_predictions, save_predictions
from ensemble.io.submission import read_submission
from ensemble.io.test_points import write_test_points


def test_equal_sigmas_give_the_fitted_blend() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 5, 4, 2))
    base = np.broadcast_to(np.array([0.5, 0.3, 0.2]), (5, 4, 3))
    sigma = np.full((3, 5, 4), 2.5)
    expected = np.einsum("rnkc,r->nkc", values, np.array([0.5, 0.3, 0.2]))
    for gamma in GAMMAS:
        np.testing.assert_allclose(fuse(values, fused_weights(base, sigma, gamma)), expected)


def test_a_run_far_surer_at_a_point_is_followed_there() -> None:
    values = np.zeros((2, 1, 3, 2))
    values[1] = 10.0
    base = np.full((1, 3, 2), 0.5)
    sigma = np.ones((2, 1, 3))
    sigma[1, 0, 1] = 0.01  # run 1 is sure of point 1 only
    fused = fuse(values, fused_weights(base, sigma, 1.0))
    assert fused[0, 1, 0] == pytest.approx(10.0 * 1e4 / (1 + 1e4))
    np.testing.assert_allclose(fused[0, [0, 2]], 5.0)  # elsewhere the fitted 50/50
    # gamma = 1 is the inverse-variance weighting: w_r / sigma_r^2, normalised, by hand
    w = np.array([0.5 / 1.0, 0.5 / 0.01**2])
    assert fused[0, 1, 0] == pytest.approx((w / w.sum()) @ np.array([0.0, 10.0]))


def test_a_run_without_sigma_keeps_its_fitted_weight() -> None:
    base = np.broadcast_to(np.array([0.2, 0.3, 0.5]), (4, 2, 3))
    sigma = np.random.default_rng(1).uniform(0.5, 3, size=(3, 4, 2))
    sigma[2] = np.nan  # the third run has no sigma
    weights = fused_weights(base, sigma, 1.0)
    np.testing.assert_allclose(weights[..., 2], 0.5)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0)
    ratio = weights[..., 0] / weights[..., 1]  # the two with sigma: w_r / sigma_r^2
    np.testing.assert_allclose(ratio, (0.2 / sigma[0] ** 2) / (0.3 / sigma[1] ** 2))


def test_gamma_is_chosen_on_validation_and_never_worse_than_the_fit() -> None:
    rng = np.random.default_rng(2)
    n, k = 400, 30
    truth = rng.normal(size=(n, k, 2)) * 20
    sigma = rng.uniform(0.5, 6.0, size=(2, n, k))  # honest sigmas: errors drawn from them
    values = truth[None] + rng.normal(size=(2, n, k, 2)) * sigma[..., None]
    base = np.full((n, k, 2), 0.5)
    fit = fit_gamma(values, sigma, truth, base)
    assert fit.gamma == 1.0  # the maximum-likelihood combination wins on honest sigmas
    assert fit.score < 0.8 * fit.scores[0.0]
    by_hand = ((fuse(values, fused_weights(base, sigma, 1.0)) - truth) ** 2).mean()
    assert fit.score == pytest.approx(by_hand)
    noise = rng.uniform(0.5, 6.0, size=(2, n, k))  # sigmas that say nothing: gamma stays 0
    assert fit_gamma(values, noise, truth, base).gamma == 0.0


def _sigma_runs(tmp_path, with_sigma=(True, True)):
    """A data folder and two run folders whose errors follow their (honest) sigmas."""
    rng = np.random.default_rng(3)
    n_points, n_val, n_test = 40, 150, 20
    data, runs = tmp_path / "data", tmp_path / "runs"
    val_names = np.array([f"v{i:03d}.jpg" for i in range(n_val)], dtype=object)
    test_names = np.array([f"t{i:03d}.jpg" for i in range(n_test)], dtype=object)
    truth = rng.uniform(50, 400, size=(n_val, n_points, 2))
    write_landmarks(data / "train" / "landmarks.csv", val_names, truth)
    indices = np.stack([rng.choice(n_points, 30, replace=False) for _ in range(n_test)])
    write_test_points(data / "test" / "test_points.csv", test_names, indices)
    test_truth = rng.uniform(50, 400, size=(n_test, n_points, 2))
    for number, has_sigma in enumerate(with_sigma):
        folder = runs / f"run{number}"
        folder.mkdir(parents=True)
        (folder / "config.toml").write_text(f'data = "{data}"\n')
        for name, names, target in (("val", val_names, truth), ("test", test_names, test_truth)):
            sigma = rng.uniform(0.5, 8.0, size=target.shape[:2])
            points = target + rng.normal(size=target.shape) * sigma[..., None]
            save_predictions(
                folder / f"{name}_predictions.npz",
                names,
                points,
                sigma=sigma if has_sigma else None,
            )
    return runs, data, indices


def test_blend_method_uncertainty_writes_the_fused_blend(tmp_path) -> None:
    runs, data, indices = _sigma_runs(tmp_path)
    output = tmp_path / "fused.csv"
    args = ["blend", "--fit", str(runs), "--method", "uncertainty", "-o", str(output)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "lsq blend" in result.output and "fused (gamma" in result.output
    saved = json.loads((tmp_path / "fused.weights.json").read_text())
    assert saved["method"] == "uncertainty"
    fusion = saved["fusion"]
    assert saved["blend_val_score"] < fusion["lsq_blend_val_score"]  # honest sigmas help
    assert fusion["gamma"] > 0
    # the written values are the fused test predictions, computed here by hand
    tests = [load_predictions(runs / f"run{i}" / "test_predictions.npz") for i in range(2)]
    weights = np.array(list(saved["weights"].values()))
    gamma = fusion["gamma"]
    rows = np.arange(len(indices))[:, None]
    w = np.stack([weights[r] * t.sigma[rows, indices] ** (-2 * gamma) for r, t in enumerate(tests)])
    w /= w.sum(axis=0)
    expected = sum(w[r][..., None] * t.points[rows, indices] for r, t in enumerate(tests))
    written = read_submission(output).values
    np.testing.assert_allclose(written, expected, atol=6e-5)


def test_blend_method_uncertainty_without_any_sigma_is_a_clean_error(tmp_path) -> None:
    runs, _, _ = _sigma_runs(tmp_path, with_sigma=(False, False))
    args = ["blend", "--fit", str(runs), "--method", "uncertainty", "-o", str(tmp_path / "o.csv")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "no run has sigma" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o.csv").exists()


def test_the_cli_offers_every_fit_method() -> None:
    from ensemble.blend.names import FIT_METHODS, FUSION_METHOD, LEARNED_METHODS
    from ensemble.cli.blend import blend

    choices = next(p for p in blend.params if p.name == "method").type.choices
    assert list(choices) == [*FIT_METHODS, FUSION_METHOD, *LEARNED_METHODS]


def test_the_cli_offers_the_declared_schemes_and_combiners() -> None:
    from ensemble.blend.names import COMBINERS, SCHEMES
    from ensemble.cli.blend import blend

    choices = {p.name: getattr(p.type, "choices", None) for p in blend.params}
    assert list(choices["scheme"]) == list(SCHEMES)
    assert list(choices["combine"]) == list(COMBINERS)


def test_compare_scores_the_fusion_as_the_plain_fit_does(tmp_path) -> None:
    from ensemble.blend import compare_fits, fit_runs

    runs, _, _ = _sigma_runs(tmp_path, with_sigma=(True, False))
    comparison = compare_fits(runs)
    fused = next(m for m in comparison.methods if m.method == "uncertainty")
    report = fit_runs(runs, method="uncertainty")
    assert fused.in_sample == pytest.approx(report.blend_score)
    assert fused.cross_validated == pytest.approx(report.cv_score)
    runs_without, _, _ = _sigma_runs(tmp_path / "none", with_sigma=(False, False))
    assert "uncertainty" not in [m.method for m in compare_fits(runs_without).methods]
