"""The chi-square upper tail P(chi2(df) > x) without scipy, so `ens analyze` starts fast.

It is the regularised upper incomplete gamma function Q(df/2, x/2), by its power series below
a + 1 and by Lentz's continued fraction above (Numerical Recipes, 6.2), to about 1e-14.
"""

from __future__ import annotations

import math

_TINY = 1e-300
_EPS = 1e-15
_MAX_TERMS = 100_000


def chi2_sf(x: float, df: float) -> float:
    """P(chi2(df) > x), the p-value of a chi-square statistic x with df degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if x <= 0:
        return 1.0
    return gamma_upper(df / 2, x / 2)


def gamma_upper(a: float, x: float) -> float:
    """Regularised upper incomplete gamma Q(a, x) = Gamma(a, x) / Gamma(a), for a, x > 0."""
    log_prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        return 1.0 - math.exp(log_prefix) * _lower_series(a, x)
    return math.exp(log_prefix) * _upper_fraction(a, x)


def _lower_series(a: float, x: float) -> float:
    """sum_n x^n / (a (a+1) ... (a+n)): P(a, x) without its prefix."""
    term = total = 1.0 / a
    for n in range(1, _MAX_TERMS):
        term *= x / (a + n)
        total += term
        if abs(term) < abs(total) * _EPS:
            return total
    raise ArithmeticError(f"incomplete gamma series did not converge (a={a}, x={x})")


def _upper_fraction(a: float, x: float) -> float:
    """The continued fraction of Q(a, x) without its prefix (modified Lentz)."""
    b = x + 1.0 - a
    c, d = 1.0 / _TINY, 1.0 / b
    fraction = d
    for i in range(1, _MAX_TERMS):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        step = d * c
        fraction *= step
        if abs(step - 1.0) < _EPS:
            return fraction
    raise ArithmeticError(f"incomplete gamma fraction did not converge (a={a}, x={x})")
