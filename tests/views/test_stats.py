import numpy as np
import pytest
from scipy import stats as sps

from core.views.stats import CorrelationResult, correlation


def _data(n=30, slope=1.0, noise=0.3, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return x, slope * x + noise * rng.normal(size=n)


def test_point_estimates_match_scipy():
    x, y = _data(n=25, noise=1.0)
    y[3] = y[7]  # a tie, so Spearman's tie handling is exercised
    r = correlation(x, y, n_boot=200, n_perm=200)
    assert r.n == 25
    assert r.pearson == pytest.approx(sps.pearsonr(x, y).statistic, abs=1e-12)
    assert r.spearman == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-12)


def test_ci_contains_estimate_and_is_ordered():
    x, y = _data(n=20, noise=1.0)
    r = correlation(x, y)
    for est, (lo, hi) in ((r.pearson, r.pearson_ci), (r.spearman, r.spearman_ci)):
        assert -1 <= lo <= est <= hi <= 1


def test_strong_relation_small_p_and_noise_large_p():
    x, y = _data(n=30, noise=0.3)
    strong = correlation(x, y)
    assert strong.pearson > 0.9
    # the +1 correction: the smallest possible p is 1 / (1 + n_perm)
    assert strong.pearson_p_perm == pytest.approx(1 / 2001)
    assert strong.spearman_p_perm < 0.01
    rng = np.random.default_rng(5)
    noise = correlation(rng.normal(size=30), rng.normal(size=30))
    assert noise.pearson_p_perm > 0.05 and noise.spearman_p_perm > 0.05
    assert noise.pearson_ci[0] < 0 < noise.pearson_ci[1]


def test_negative_relation_is_two_sided():
    x, y = _data(n=30, slope=-1.0, noise=0.3)
    r = correlation(x, y, n_perm=500)
    assert r.pearson < -0.9 and r.pearson_p_perm < 0.01


def test_deterministic_given_seed_and_seed_matters():
    x, y = _data(n=15, noise=2.0)
    a = correlation(x, y, seed=3)
    b = correlation(x, y, seed=3)
    c = correlation(x, y, seed=4)
    assert a == b
    assert a.pearson_ci != c.pearson_ci


def test_does_not_touch_global_rng():
    before = np.random.get_state()[1].copy()  # noqa: NPY002 - checking it is left alone
    correlation(*_data(), n_boot=50, n_perm=50)
    assert np.array_equal(np.random.get_state()[1], before)  # noqa: NPY002


def test_constant_input_gives_nan():
    r = correlation([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 5.0], n_boot=50, n_perm=50)
    assert isinstance(r, CorrelationResult)
    assert np.isnan(r.pearson) and np.isnan(r.spearman)
    assert np.isnan(r.pearson_ci).all() and np.isnan(r.pearson_p_perm)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        ([1, 2, 3], [1, 2], "same length"),
        ([1, 2], [1, 2], "at least 3"),
        ([1, np.nan, 3], [1, 2, 3], r"x must be finite.*x\[1\]"),
        ([1, 2, 3], [1, 2, np.inf], r"y must be finite.*y\[2\]"),
        ([[1, 2, 3]], [1, 2, 3], "x must be 1-D"),
    ],
)
def test_bad_input_raises(x, y, match):
    with pytest.raises(ValueError, match=match):
        correlation(x, y)


def test_summary_mentions_numbers():
    r = correlation(*_data(n=12), n_boot=100, n_perm=100)
    assert "n = 12" in r.summary() and f"{r.pearson:.2f}" in r.summary()
