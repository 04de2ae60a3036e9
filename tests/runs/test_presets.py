"""Presets' costs (core/runs/presets.py): expected below the bound, both printed."""

from __future__ import annotations

import pytest

from core.runs.presets import PRESETS, estimate_cost


def test_preset_estimate_is_below_its_bound():
    for name in ("tiny", "cpu-digits", "fc-mnist", "paper-resnet9-cifar10"):
        cost = estimate_cost(name)
        assert (
            cost["PFLOP"] <= cost["PFLOP bound"]
            and cost["GPU minutes"] <= cost["GPU minutes bound"]
        )
    # resnet9 on CIFAR10 has no measured runs: estimated at its bound
    cost = estimate_cost("paper-resnet9-cifar10")
    assert cost["measured"] == [] and cost["PFLOP"] == pytest.approx(cost["PFLOP bound"])
    # cpu-digits: its MLPs and CNNs measured (every pair with no barrier, early)
    cost = estimate_cost("cpu-digits")
    assert cost["measured"] == [("digits", "cnn"), ("digits", "mlp")] and not cost["unmeasured"]
    assert estimate_cost("cpu-mnist1d")["unmeasured"] == []  # its MLPs and CNNs measured
    assert estimate_cost("fc-mnist")["unmeasured"] == [("mnist", "mlp")]
    assert cost["PFLOP"] < 0.5 * cost["PFLOP bound"]


def test_cli_presets_prints_estimate_and_bound(tmp_path, capsys):
    from core.__main__ import main

    assert main(["--runs-dir", str(tmp_path), "presets"]) == 0
    out = capsys.readouterr().out
    tiny = estimate_cost("tiny")
    line = out.split("\ntiny ", 1)[1]
    assert f"expected {tiny['PFLOP']:.3g} PFLOP" in line
    assert f"at most {tiny['PFLOP bound']:.3g} PFLOP" in line
    assert out.count("with every pair at its step cap") == len(PRESETS)
