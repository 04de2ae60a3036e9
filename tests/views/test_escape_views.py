"""The escape table, text and figure hold the result's own numbers."""

from __future__ import annotations

import numpy as np
import pytest

from core.engine.escape import EscapeResult
from core.engine.escape_stats import rank_correlation
from core.views.escape import (
    escape_figure,
    escape_rows,
    format_escape,
    sweep_rows,
    unsettled_note,
    verdict,
)


def _result(unsettled=(0, 2, 0)) -> EscapeResult:
    """Minimum 1: 4 of its 8 settled trajectories escaped, 2 more had not settled."""
    lengths = np.array([np.inf, 0.5, 0.1])
    escaped = np.array([1, 4, 9])
    return EscapeResult(
        settings={"lr": 0.1, "batch_size": 8, "steps": 50, "seed": 0, "descent_steps": 10},
        values=np.array([0.0, 0.2, 0.3]),
        lengths=lengths,
        levels=np.array([0.7, 0.7, 0.4]),
        escaped=escaped,
        unsettled=np.array(unsettled),
        diverged=np.array([0, 0, 0]),
        arrived=np.array([[0, 1, 0], [2, 0, 1], [5, 3, 0]]),
        repeats=10,
        correlation=rank_correlation(lengths, escaped / (10 - np.array(unsettled))),
        extra={"run_id": "0123456789ab"},
    )


def test_rows_text_and_figure_hold_the_results_numbers():
    res = _result()
    rows = escape_rows(res)
    assert [r["minimum"] for r in rows] == [0, 1, 2]  # longest bar first, the essential one
    assert [r["escape probability"] for r in rows] == [0.1, 0.5, 0.9]  # escaped / settled
    assert [(r["escaped"], r["settled"], r["unsettled"]) for r in rows] == [
        (1, 10, 0),
        (4, 8, 2),
        (9, 10, 0),
    ]
    assert [r["to a stored basin"] for r in rows] == [1, 3, 8]
    assert [r["exit barrier"] for r in rows] == pytest.approx([0.7, 0.5, 0.1])
    assert np.allclose([(r["95% low"], r["95% high"]) for r in rows], res.interval)
    assert rows[2]["arrived in (minimum: count)"] == "0: 5, 1: 3"
    assert res.correlation.rho == pytest.approx(-1.0)
    text = format_escape(res)
    assert "escapes from run 0123456789ab: SGD lr 0.1, batch 8" in text
    assert "        9/10             0.900  [0.596, 0.982]         8          0         0" in text
    assert "        4/8              0.500  [0.215, 0.785]         3          2         0" in text
    assert "probability = escaped / settled" in text and verdict(res) in text
    assert verdict(res).startswith("Escape probability tends to fall, not significantly,")
    (trace,) = escape_figure([res]).data
    assert list(trace.y) == [0.1, 0.5, 0.9]
    assert trace.x[0] == pytest.approx(1.25 * 0.5)  # the essential bar, right of the longest
    assert np.allclose(trace.error_y.array, res.interval[:, 1] - res.probability)
    assert np.allclose(trace.error_y.arrayminus, res.probability - res.interval[:, 0])


def test_most_trajectories_unsettled_is_inconclusive():
    res = _result(unsettled=(6, 6, 0))  # 12 of 30: still conclusive
    assert not res.inconclusive and unsettled_note([res]) == ""
    res = _result(unsettled=(9, 6, 1))  # 16 of 30
    assert res.inconclusive
    assert (
        verdict(res)
        == unsettled_note([res])
        == (
            "Inconclusive: 16 of 30 trajectories had not settled after 10 full-batch steps (their "
            "loss is still above the basin threshold), so the escape probabilities rest on too "
            "few; run again with more descent steps (the CLI's --descent-steps, the page's "
            "Descent steps)."
        )
    )
    assert verdict(res) in format_escape(res)
    (row,) = sweep_rows([res])
    assert (row["escaped"], row["settled"], row["unsettled"], row["diverged"]) == (14, 14, 16, 0)
