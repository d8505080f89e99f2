"""How validation MSE maps to leaderboard MSE: OLS and Theil-Sen lines, outliers, shake-up."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

OUTLIER_THRESHOLD = 3.5  # modified z-score (Iglewicz & Hoaglin) of the Theil-Sen residual
MIN_POINTS_FOR_OUTLIERS = 5  # with fewer, a robust line passes through most points exactly


@dataclass(frozen=True)
class LineFit:
    """Ordinary least squares of y on x with standard errors and t-based intervals."""

    n: int
    slope: float
    intercept: float
    r_squared: float
    slope_se: float
    intercept_se: float
    slope_ci: tuple[float, float]
    intercept_ci: tuple[float, float]
    residual_se: float
    x_mean: float
    sxx: float
    t_critical: float
    level: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Fitted values at x."""
        return self.intercept + self.slope * np.asarray(x, dtype=np.float64)

    def confidence_halfwidth(self, x: np.ndarray) -> np.ndarray:
        """Half-width of the confidence band of the mean response at x."""
        x = np.asarray(x, dtype=np.float64)
        return self.t_critical * self.residual_se * np.sqrt(1 / self.n + self._lever(x))

    def prediction_halfwidth(self, x: np.ndarray) -> np.ndarray:
        """Half-width of the prediction interval for a new observation at x."""
        x = np.asarray(x, dtype=np.float64)
        return self.t_critical * self.residual_se * np.sqrt(1 + 1 / self.n + self._lever(x))

    def _lever(self, x: np.ndarray) -> np.ndarray:
        return (x - self.x_mean) ** 2 / self.sxx


@dataclass(frozen=True)
class RobustFit:
    """Theil-Sen line: median of pairwise slopes, with a confidence interval of the slope."""

    slope: float
    intercept: float
    slope_ci: tuple[float, float]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Fitted values at x."""
        return self.intercept + self.slope * np.asarray(x, dtype=np.float64)


def ols(x: np.ndarray, y: np.ndarray, level: float = 0.95) -> LineFit:
    """OLS of y on x (scipy.stats.linregress) with t-based intervals at `level`; n >= 3."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = len(x)
    if n < 3:
        raise ValueError(f"a line with intervals needs at least three points, got {n}")
    if np.ptp(x) == 0:
        raise ValueError("all x values are identical; no line can be fitted")
    result = stats.linregress(x, y)
    residuals = y - (result.intercept + result.slope * x)
    residual_se = float(np.sqrt((residuals**2).sum() / (n - 2)))
    t_critical = float(stats.t.ppf(0.5 + level / 2, n - 2))
    slope_se, intercept_se = float(result.stderr), float(result.intercept_stderr)
    return LineFit(
        n=n,
        slope=float(result.slope),
        intercept=float(result.intercept),
        r_squared=float(result.rvalue**2),
        slope_se=slope_se,
        intercept_se=intercept_se,
        slope_ci=(result.slope - t_critical * slope_se, result.slope + t_critical * slope_se),
        intercept_ci=(
            result.intercept - t_critical * intercept_se,
            result.intercept + t_critical * intercept_se,
        ),
        residual_se=residual_se,
        x_mean=float(x.mean()),
        sxx=float(((x - x.mean()) ** 2).sum()),
        t_critical=t_critical,
        level=level,
    )


def theil_sen(x: np.ndarray, y: np.ndarray, level: float = 0.95) -> RobustFit:
    """Theil-Sen line (scipy.stats.theilslopes) with the slope's confidence interval."""
    result = stats.theilslopes(np.asarray(y, float), np.asarray(x, float), alpha=level)
    return RobustFit(
        slope=float(result.slope),
        intercept=float(result.intercept),
        slope_ci=(float(result.low_slope), float(result.high_slope)),
    )


def robust_z(residuals: np.ndarray) -> np.ndarray:
    """Modified z-scores (Iglewicz and Hoaglin): 0.6745 * (r - median) / MAD.

    When the MAD is 0 (more than half the residuals equal) the scale is the mean absolute
    deviation instead, as (r - median) / (1.2533 * MeanAD); when that is 0 too, every z is 0.
    """
    residuals = np.asarray(residuals, dtype=np.float64)
    centred = residuals - np.median(residuals)
    mad = float(np.median(np.abs(centred)))
    if mad > 0:
        return 0.6745 * centred / mad
    mean_ad = float(np.mean(np.abs(centred))) if len(centred) else 0.0
    if mean_ad > 0:
        return centred / (1.253314 * mean_ad)
    return np.zeros_like(centred)


def flag_outliers(
    x: np.ndarray, y: np.ndarray, robust: RobustFit, threshold: float = OUTLIER_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """(modified z of each point's Theil-Sen residual, True where |z| > threshold).

    With fewer than MIN_POINTS_FOR_OUTLIERS points the residual spread is not estimable (a
    robust line passes through most of them): every z is NaN and nothing is flagged.
    """
    z = robust_z(np.asarray(y, float) - robust.predict(x))
    if len(z) < MIN_POINTS_FOR_OUTLIERS:  # not estimable: NaN, shown as n/a
        return np.full(len(z), np.nan), np.zeros(len(z), dtype=bool)
    return z, np.abs(z) > threshold


@dataclass(frozen=True)
class ShakeUp:
    """Public vs private: rank agreement and the biggest movers."""

    n: int
    spearman: float
    kendall: float
    mean_shift: float
    public_rank: np.ndarray
    private_rank: np.ndarray


def shake_up(public: np.ndarray, private: np.ndarray) -> ShakeUp:
    """Rank correlation of public and private scores (lower = better) and rank changes."""
    public = np.asarray(public, float)
    private = np.asarray(private, float)
    spearman = stats.spearmanr(public, private).statistic if len(public) > 2 else np.nan
    kendall = stats.kendalltau(public, private).statistic if len(public) > 2 else np.nan
    return ShakeUp(
        n=len(public),
        spearman=float(spearman),
        kendall=float(kendall),
        mean_shift=float((private - public).mean()),
        public_rank=stats.rankdata(public, method="min").astype(int),
        private_rank=stats.rankdata(private, method="min").astype(int),
    )


@dataclass(frozen=True)
class TargetFit:
    """A leaderboard column regressed on val: both lines, outliers and predictions."""

    target: str
    rows: np.ndarray  # rows with both val and the target
    x: np.ndarray
    y: np.ndarray
    ols: LineFit
    theil: RobustFit
    z: np.ndarray  # modified z-score of each fitted row's Theil-Sen residual
    outlier: np.ndarray
    clean: LineFit  # OLS without the outliers (the same as `ols` when there are none)
    predict_rows: np.ndarray  # rows with val but no target
    predicted: np.ndarray
    prediction_halfwidth: np.ndarray


def fit_target(target: str, val: np.ndarray, y: np.ndarray, level: float = 0.95) -> TargetFit:
    """Fit `y` (a leaderboard column, NaN = missing) on `val`; needs three rows with both."""
    val = np.asarray(val, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    both = np.isfinite(val) & np.isfinite(y)
    rows = np.flatnonzero(both)
    if len(rows) < 3:
        raise ValueError(
            f"only {len(rows)} row(s) have both 'val' and '{target}'; a line needs three or more"
        )
    x_fit, y_fit = val[rows], y[rows]
    line = ols(x_fit, y_fit, level)
    robust = theil_sen(x_fit, y_fit, level)
    z, outlier = flag_outliers(x_fit, y_fit, robust)
    clean = line
    if outlier.any() and (~outlier).sum() >= 3 and np.ptp(x_fit[~outlier]) > 0:
        clean = ols(x_fit[~outlier], y_fit[~outlier], level)
    predict_rows = np.flatnonzero(np.isfinite(val) & ~np.isfinite(y))
    return TargetFit(
        target=target,
        rows=rows,
        x=x_fit,
        y=y_fit,
        ols=line,
        theil=robust,
        z=z,
        outlier=outlier,
        clean=clean,
        predict_rows=predict_rows,
        predicted=clean.predict(val[predict_rows]),
        prediction_halfwidth=clean.prediction_halfwidth(val[predict_rows]),
    )
