"""analysis.chi2 against scipy's chi-square distribution (the independent computation)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis.chi2 import chi2_sf, gamma_upper
from analysis.uniformity import uniformity
from ensemble.competition.layout import generic_layout


@pytest.mark.parametrize("df", [1, 2, 3, 7, 14, 29, 100, 970, 5000])
def test_chi2_sf_equals_scipy_across_the_whole_tail(df: int) -> None:
    for x in np.concatenate([[1e-6, 0.5], df * np.linspace(0.2, 3.0, 40)]):
        expected = stats.chi2.sf(x, df)
        assert chi2_sf(float(x), df) == pytest.approx(expected, rel=1e-9, abs=1e-300), (df, x)


def test_gamma_upper_closed_forms() -> None:
    # Q(1, x) = exp(-x); Q(1/2, x) = erfc(sqrt(x))
    for x in (0.01, 0.7, 3.0, 40.0):
        assert gamma_upper(1.0, x) == pytest.approx(np.exp(-x), rel=1e-12)
        assert gamma_upper(0.5, x) == pytest.approx(float(stats.norm.sf(np.sqrt(2 * x)) * 2))
    assert chi2_sf(0.0, 5) == 1.0
    with pytest.raises(ValueError, match="degrees of freedom"):
        chi2_sf(1.0, 0)


def test_uniformity_p_values_equal_scipy_chisquare() -> None:
    rng = np.random.default_rng(3)
    n_points, k = 40, 6
    indices = np.stack([rng.choice(n_points, k, replace=False) for _ in range(500)])
    result = uniformity(indices, generic_layout(n_points))
    counts = np.bincount(indices.ravel(), minlength=n_points)
    statistic, p_value = stats.chisquare(counts)
    assert result.statistic == pytest.approx(statistic, rel=1e-12)
    assert result.p_value == pytest.approx(p_value, rel=1e-9)
    c = result.design_factor
    assert result.p_value_design == pytest.approx(stats.chi2.sf(statistic / c, n_points - 1))
    assert result.z_critical == pytest.approx(stats.norm.isf(0.01 / (2 * n_points)))
