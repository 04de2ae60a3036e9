"""Escapability on landscapes where the answer is known: a tilted double well and the four
wells of ``core.engine.toy``.

The double well, f(x, y) = (x^2 - 1)^2 + 0.3 x + y^2, along y = 0::

    f
    1.01 |          . s .              s: the saddle, x = 0.075
         |        .       .
    0.29 |      .           .  <- right well (shallow): barrier 0.717
   -0.31 |  . .               right
         | left   <- left well (deep): barrier 1.317
         +---------------------------- x
          -1.04     0.075      0.96
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.stats import binomtest, spearmanr

from core.engine.barcode import barcode_from_graph
from core.engine.escape import (
    RULE,
    EscapeResult,
    basin_levels,
    classify,
    descend,
    langevin_escape,
    segment_maxima,
    thresholds,
    toy_escape,
)
from core.engine.escape_stats import pooled_rank_correlation, rank_correlation, wilson
from core.engine.toy import exact_barcode, get_toy
from core.runs.files import read_json, write_json

TILT = 0.3


def double_well(t: torch.Tensor) -> torch.Tensor:
    x, y = t[:, 0], t[:, 1]
    return (x**2 - 1) ** 2 + TILT * x + y**2


def _well():
    """The exact minima (2, 2), the barcode from the exact saddle, and the saddle's x."""
    left, mid, right = np.sort(np.roots([4, 0, -4, TILT]).real)  # f'(x) = 0 on y = 0
    minima = torch.tensor([[left, 0.0], [right, 0.0]], dtype=torch.float64)
    values = double_well(minima).numpy()
    saddle = float(double_well(torch.tensor([[mid, 0.0]], dtype=torch.float64)))
    bars = barcode_from_graph(values, [[values[0], saddle], [saddle, values[1]]])
    return minima, bars, mid


def test_the_double_well_has_the_barriers_drawn():
    minima, bars, mid = _well()
    assert mid == pytest.approx(0.0754, abs=1e-4)
    assert bars.segment_of()[1] == pytest.approx(0.7171, abs=1e-4)  # right well: the bar
    assert np.isinf(bars.segment_of()[0])
    assert basin_levels(bars) == pytest.approx([1.0113, 1.0113], abs=1e-4)
    # both wells leave their basin at the saddle: the deep one's exit barrier is finite
    assert (basin_levels(bars) - bars.values) == pytest.approx([1.3167, 0.7171], abs=1e-4)


def test_escape_rises_with_noise_and_is_higher_from_the_shallower_well():
    minima, bars, _ = _well()
    escaped = []
    for noise in (0.0, 0.5, 0.7, 1.0):
        res = langevin_escape(
            double_well, minima, bars, noise=noise, lr=0.01, steps=500, repeats=200, seed=1
        )
        escaped.append(res.escaped)
        # every escape is certified in the other well; after 500 descent steps all settled
        assert res.arrived.tolist() == [[0, res.escaped[0]], [res.escaped[1], 0]]
        assert res.unsettled.sum() == res.diverged.sum() == 0
        assert res.settled.tolist() == [200, 200]
        assert res.probability.tolist() == (res.escaped / 200).tolist()
        assert res.settings["rule"] == RULE
    escaped = np.array(escaped)  # (noise, well)
    assert escaped.tolist() == [[0, 0], [0, 3], [2, 35], [40, 119]]
    assert escaped[0].tolist() == [0, 0]  # no noise: nobody leaves
    assert np.all(np.diff(escaped, axis=0) >= 0) and escaped[-1, 1] > escaped[1, 1] + 50
    assert np.all(escaped[1:, 1] > escaped[1:, 0])  # shallow (short bar) > deep (essential)
    assert escaped[-1, 0] > 0  # the deep well is left too, into the shallow one


def test_unsettled_trajectories_are_not_escapes():
    """With no descent after the noise, trajectories caught on the ridge are unsettled: they
    are counted apart and left out of the escape probability's denominator."""
    minima, bars, _ = _well()
    res = langevin_escape(
        double_well, minima, bars, noise=1.0, lr=0.01, steps=500, repeats=200, seed=1,
        descent_steps=0,
    )  # fmt: skip
    assert res.unsettled.tolist() == [32, 34] and res.diverged.tolist() == [0, 0]
    assert res.settled.tolist() == [168, 166]
    assert res.escaped.tolist() == [29, 106]  # 40 and 119 once all have settled (above)
    assert res.stored_arrivals.tolist() == [29, 103]  # 3 settled below the level elsewhere
    assert res.probability == pytest.approx([29 / 168, 106 / 166])
    assert res.interval == pytest.approx(wilson(np.array([29, 106]), np.array([168, 166])))
    assert res.unsettled_share == pytest.approx(66 / 400) and not res.inconclusive
    # the correlation is over the minima with a settled trajectory
    assert res.correlation == rank_correlation(*res.scored(), seed=1)


def test_a_result_judged_by_an_older_rule_is_refused():
    minima, bars, _ = _well()
    res = langevin_escape(double_well, minima, bars, noise=0.5, lr=0.01, steps=10, repeats=2)
    old = res.to_dict()
    old["settings"] = {k: v for k, v in old["settings"].items() if k != "rule"}
    with pytest.raises(ValueError, match=f"judged by escape rule 1, not the current {RULE}"):
        EscapeResult.from_dict(old)


def test_the_rule_is_exact_on_points_placed_by_hand():
    minima, bars, mid = _well()
    below = thresholds(bars)  # a tenth of each exit barrier below the saddle
    assert below == pytest.approx(basin_levels(bars) - 0.1 * (basin_levels(bars) - bars.values))
    ends = torch.tensor(
        [
            [-1.0, 0.1],  # near the left minimum
            [0.9, -0.1],  # in the right well
            [mid, 0.0],  # on the saddle: above both thresholds, unsettled (not escaped)
            [-0.5, 0.3],  # left slope, below the level
        ],
        dtype=torch.float64,
    )
    for start, escaped, arrived in (
        (0, [False, True, False, False], [-1, 1, -1, -1]),
        (1, [True, False, False, True], [0, -1, -1, 0]),
    ):
        out = classify(double_well, ends, np.full(4, start), minima, below)
        assert out.escaped.tolist() == escaped
        assert out.arrived.tolist() == arrived
        assert out.stayed.tolist() == [start == 0, start == 1, False, start == 0]
        assert out.unsettled.tolist() == [False, False, True, False]
        assert not out.diverged.any()
    # the segment between the minima runs over the saddle: read to within 1e-3 of it
    top = segment_maxima(double_well, minima[:1], minima[1:])
    assert float(top) == pytest.approx(bars.saddles[0, 1], abs=1e-3)


def test_the_rule_agrees_with_the_gradient_flow_on_four_wells():
    land, res = toy_escape("wells", noise=0.0, steps=1, repeats=1)
    minima, bars = land.minima.thetas, land.barcode
    exact = exact_barcode(get_toy("wells"), resolution=401)
    assert np.sort(bars.lengths) == pytest.approx(np.sort(exact.deaths - exact.births), rel=0.02)
    assert res.escaped.sum() == 0  # no noise: every start stays
    # random points of the box, a short descent (as the experiment's), then the truth: where a
    # long descent ends
    gen = torch.Generator().manual_seed(0)
    pts = (torch.rand(300, 2, generator=gen, dtype=torch.float64) - 0.5) * 6
    ends = descend(get_toy("wells").fn, pts, lr=0.1, steps=30)
    final = descend(get_toy("wells").fn, ends, lr=0.1, steps=3000)
    truth = torch.cdist(final, minima).argmin(1).numpy()
    assert torch.cdist(final, minima).min(1).values.max() < 1e-3
    below = thresholds(bars)
    f = get_toy("wells").fn
    settled = f(ends).numpy() < below[truth]
    for k in range(len(minima)):
        out = classify(f, ends, np.full(len(ends), k), minima, below)
        # a point that has settled below its basin's threshold is judged right
        assert np.array_equal(out.escaped[settled], truth[settled] != k)
        assert not (out.escaped & out.unsettled).any()
        away = settled & (truth != k)
        assert np.array_equal(out.arrived[away], truth[away])
    assert settled.mean() > 0.9


def test_rank_correlation_is_spearmans_rho_with_an_exact_permutation_p():
    x, y = np.array([1.0, 2, 3, 4, np.inf]), np.array([0.9, 0.5, 0.6, 0.1, 0.0])
    res = rank_correlation(x, y)
    assert res.rho == pytest.approx(spearmanr(x, y).statistic)
    # 5! = 120 orderings, all enumerated: two-sided p = 2 * the smaller tail
    rhos = np.array([spearmanr(x, y[list(o)]).statistic for o in itertools.permutations(range(5))])
    tail = min(np.mean(rhos <= res.rho + 1e-12), np.mean(rhos >= res.rho - 1e-12))
    assert res.p == pytest.approx(2 * tail) and res.p < 0.1
    assert math.isnan(rank_correlation(x, np.zeros(5)).rho)  # constant: undefined
    # pooled over two runs: permutations within each run; one run alone is the plain test
    two = pooled_rank_correlation([(x, y), (x[:4], y[:4][::-1])])
    assert two.groups == 2 and two.n == 9
    assert two.rho == pytest.approx((5 * res.rho + 4 * spearmanr(x[:4], y[:4][::-1]).statistic) / 9)
    assert pooled_rank_correlation([(x, y)]) == res


def test_wilson_intervals_are_scipys():
    got = wilson(np.array([0, 3, 10]), 10)
    for (lo, hi), k in zip(got, (0, 3, 10), strict=True):
        ci = binomtest(k, 10).proportion_ci(0.95, method="wilson")
        assert (lo, hi) == pytest.approx((ci.low, ci.high))


def test_a_result_round_trips_through_json(tmp_path):
    minima, bars, _ = _well()
    res = langevin_escape(double_well, minima, bars, noise=0.8, lr=0.01, steps=200, repeats=20)
    write_json(tmp_path / "r.json", res.to_dict())
    back = EscapeResult.from_dict(read_json(tmp_path / "r.json"))
    assert back.to_dict() == res.to_dict()
    assert np.isinf(back.lengths[0]) and back.probability.tolist() == res.probability.tolist()


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"lr": 0.0}, "lr must be a finite number > 0, got 0.0"),
        ({"lr": math.nan}, "lr must be a finite number > 0, got nan"),
        ({"repeats": 0}, "repeats must be an int > 0, got 0"),
        ({"noise": -1.0}, "noise must be a finite number >= 0, got -1.0"),
        ({"steps": 1.5}, "steps must be an int > 0, got 1.5"),
    ],
)
def test_bad_settings_name_the_argument(kw, words):
    minima, bars, _ = _well()
    settings = {"noise": 0.5, "lr": 0.01, "steps": 10, "repeats": 2} | kw
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        langevin_escape(double_well, minima, bars, **settings)
