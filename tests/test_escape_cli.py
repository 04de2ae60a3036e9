"""``python -m core escape``: the table prints the library's numbers; bad input is one line
on stderr and exit code 2, before anything is computed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.__main__ import main
from core.runs.escape import escape_saved
from core.views.escape import escape_rows

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--batch-size", "16", "--steps", "15", "--repeats", "3", "--descent-steps", "100"]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["escape", "0123456789ab"], "no run '0123456789ab'"),
        (["escape", "nonsense"], "run id 'nonsense' is not 12 lowercase hex digits"),
        (["escape", "{run}", "--lr", "0"], "lr must be a finite number > 0, got 0.0"),
        (["escape", "{run}", "--lr", "0.1", "-2"], "lr must be a finite number > 0, got -2.0"),
        (["escape", "{run}", "--repeats", "0"], "repeats must be an int > 0, got 0"),
        (["escape", "{run}", "--steps", "x"], "argument --steps: invalid int value: 'x'"),
        (["escape", "{run}", "--batch-size", "100000"], "batch_size must be at most 300"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tiny_runs, capsys, argv, words):
    argv = [a.replace("{run}", tiny_runs.run.run_id) for a in argv]
    rc = main(["--runs-dir", str(tiny_runs.root), *argv])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "", (out, err)
    assert err.count("\n") == 1 and err.startswith("error: ") and words in err, err


def test_real_exit_code_for_an_unknown_run(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "core", "--runs-dir", str(tmp_path), "escape", "0123456789ab"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and "no run '0123456789ab'" in p.stderr


def test_the_table_prints_the_librarys_numbers(tiny_runs, capsys):
    run_id = tiny_runs.run.run_id
    argv = ["--runs-dir", str(tiny_runs.root), "escape", run_id, "--lr", "0.3", "0.6", *FAST]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "learning-rate sweep:" in out and "Spearman" in out
    for lr in (0.3, 0.6):
        res, saved = escape_saved(
            tiny_runs.store, run_id, lr=lr, batch_size=16, steps=15, repeats=3, descent_steps=100
        )
        assert saved  # the CLI saved it
        for row in escape_rows(res):
            p, lo, hi = row["escape probability"], row["95% low"], row["95% high"]
            line = (
                f"{row['escaped']:7d}/{row['settled']:<7d}  {p:11.3f}  [{lo:.3f}, {hi:.3f}]    "
                f"{row['to a stored basin']:6d}  {row['unsettled']:9d}  {row['diverged']:8d}"
            )
            assert line in out
    # asked again: read from the store
    assert main(argv) == 0
    assert "(saved result)" in capsys.readouterr().out


def test_mostly_unsettled_is_called_inconclusive(tiny_runs, capsys):
    fast = [*FAST[:-1], "5"]  # 5 descent steps: nothing settles on the tiny run
    argv = ["--runs-dir", str(tiny_runs.root), "escape", tiny_runs.run.run_id, "--lr", "0.5"]
    assert main([*argv, *fast]) == 0
    out = capsys.readouterr().out
    assert "Inconclusive: 9 of 9 trajectories had not settled after 5 full-batch steps" in out
    assert "more descent steps (the CLI's --descent-steps" in out
