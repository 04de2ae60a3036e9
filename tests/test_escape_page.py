"""The Escapability page under streamlit's AppTest, over the tiny runs of conftest.py: a run
of the form shows the library's numbers; bad input is an error message, not a traceback."""

from __future__ import annotations

import json

import pytest
from test_app import open_page

from core.runs.escape import escape_saved
from core.views.escape import escape_rows, verdict


def _run_form(at, lrs: str, descent: int = 100):
    at.text_input[0].set_value(lrs)
    at.number_input[0].set_value(16)  # minibatch
    at.number_input[1].set_value(15)  # SGD steps
    at.number_input[2].set_value(3)  # repeats
    at.number_input[4].set_value(descent)  # full-batch descent steps
    at.button[0].click()  # the form's Run
    return at.run()


def test_the_table_and_figure_are_the_librarys_numbers(runs_env):
    run = runs_env.run
    at = _run_form(open_page("escape", run_id=run.run_id), "0.4")
    assert not at.exception and not at.error, [e.value for e in at.error]
    res, saved = escape_saved(
        runs_env.store, run.run_id, lr=0.4, batch_size=16, steps=15, repeats=3, descent_steps=100
    )
    assert saved  # the page computed and saved it
    rows = escape_rows(res)
    table = at.dataframe[-1].value
    assert list(table["minimum"]) == [r["minimum"] for r in rows]
    for col in ("escaped", "settled", "unsettled", "diverged", "to a stored basin"):
        assert list(table[col]) == [r[col] for r in rows], col
    for col in ("escape probability", "95% low", "95% high", "bar length"):
        assert list(table[col]) == pytest.approx([r[col] for r in rows]), col
    (fig,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(fig["data"]) == 1 and fig["data"][0]["name"] == "lr 0.4"
    assert res.correlation.summary() in fig["layout"]["title"]["text"]
    assert any(verdict(res) in m.value for m in at.markdown) and not at.warning
    settled = f"{int(res.escaped.sum())} of {int(res.settled.sum())} settled trajectories"
    assert any(settled in c.value for c in at.caption)


def test_mostly_unsettled_is_a_warning_that_says_inconclusive(runs_env):
    run = runs_env.run
    at = _run_form(open_page("escape", run_id=run.run_id), "0.45", descent=5)
    assert not at.exception and not at.error, [e.value for e in at.error]
    res, _ = escape_saved(
        runs_env.store, run.run_id, lr=0.45, batch_size=16, steps=15, repeats=3, descent_steps=5
    )
    assert res.inconclusive
    (warning,) = at.warning
    assert verdict(res) in warning.value and "Inconclusive: 9 of 9" in warning.value


@pytest.mark.parametrize(
    ("lrs", "words"),
    [("0", "lr must be a finite number > 0"), ("fast", "'fast' is not a number")],
)
def test_bad_input_is_an_error_message(runs_env, lrs, words):
    at = _run_form(open_page("escape", run_id=runs_env.run.run_id), lrs)
    assert not at.exception
    assert any(words in e.value for e in at.error), [e.value for e in at.error]
