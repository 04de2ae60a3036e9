"""Barcodes modulo permutation symmetry in a run: paths.align computes the aligned
landscape beside the raw one, which stays the same to the bit."""

import numpy as np
import pytest
import torch
from conftest import tiny_config

from core.engine.saddles import path_profile
from core.runs.pipeline import objectives, run
from core.runs.store import RunStore, read_run

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("runs"))
    raw = run(tiny_config(8, minima=4), store=store)
    aligned = run(tiny_config(8, minima=4).replace(paths={"align": "weight-matching"}), store=store)
    return store, raw, aligned


def test_the_raw_barcode_is_unchanged_to_the_bit_when_alignment_is_on(pair):
    _, raw, al = pair
    assert raw.aligned is None and al.aligned is not None
    assert al.barcode == raw.barcode
    np.testing.assert_array_equal(al.paths.saddles, raw.paths.saddles)
    assert torch.equal(al.minima.thetas, raw.minima.thetas)
    assert al.summary.to_score_sum == raw.summary.to_score_sum
    assert al.summary.aligned_to_score_sum == al.aligned.barcode.to_score("sum")
    assert raw.summary.aligned_to_score_sum is None


def test_aligned_minima_are_the_same_functions_closer_to_the_reference(pair):
    _, raw, al = pair
    a = al.aligned
    assert torch.equal(a.thetas[0], raw.minima.thetas[0])  # the reference, the lowest minimum
    np.testing.assert_allclose(a.values, raw.minima.values, rtol=0, atol=1e-5)
    before = (raw.minima.thetas[1:] - raw.minima.thetas[0]).norm(dim=1)
    after = (a.thetas[1:] - a.thetas[0]).norm(dim=1)
    assert (after < before).all()


def test_the_aligned_landscape_is_stored_and_its_saddles_are_its_paths_maxima(pair):
    store, _, al = pair
    back = read_run(store, al.run_id)
    assert back.aligned.barcode == al.aligned.barcode
    assert torch.equal(back.aligned.thetas, al.aligned.thetas)
    np.testing.assert_array_equal(back.aligned.paths.saddles, al.aligned.paths.saddles)
    obj, _ = objectives(al.config)
    p = back.aligned.paths
    for e in range(len(p)):
        _, vals = path_profile(obj, p.points[e], int(p.densities[e]))
        assert vals.max() == pytest.approx(p.saddles[e], abs=1e-6)
        i, j = p.pairs[e]  # between aligned minima (the straight chain's end: within an ulp)
        torch.testing.assert_close(p.points[e][[0, -1]], back.aligned.thetas[[i, j]])


@pytest.mark.slow
def test_the_barcode_modulo_symmetry_stays_put_when_the_path_settings_change(tmp_path):
    """Narrow tanh networks (4 minima of width 2 on 200 digits, L2 1e-2): every bar of the
    barcode modulo the units' symmetry moves by less than saddle_tol when the paths get twice
    the points and steps, or a quarter of the trust radius."""
    import dataclasses

    from core.engine.pairs import select_and_connect
    from core.runs.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    from core.runs.record import modulo_barcode

    cfg = RunConfig(
        data=DataConfig(name="digits", n_train=200, n_test=100),
        model=ModelConfig(arch="mlp", width=2, depth=1, activation="tanh"),
        train=TrainConfig(minima=4, optimizer="lbfgs", lr=0.1, steps=5000, l2=1e-2, grad_tol=1e-5),
        device="cpu",
    ).replace(paths={"align": "weight-matching"})
    r = run(cfg, store=RunStore(tmp_path))
    bars = r.aligned.barcode
    assert np.isfinite(bars.deaths).sum() == 3 and bars.to_score("max") > 10 * cfg.paths.saddle_tol
    _, obj = objectives(cfg)
    v = r.aligned.values
    for change in ({"n_points": 20, "max_points": 32, "steps": 6000}, {"max_move": 0.05}):
        o = dataclasses.replace(cfg.paths, **change)
        p = select_and_connect(obj, r.minima.thetas, r.minima.values, o, minima_options=cfg.train)
        q = select_and_connect(obj, r.aligned.thetas, v, o, minima_options=cfg.train)
        again = modulo_barcode(p, q, v)
        np.testing.assert_array_equal(again.minimum, bars.minimum)
        np.testing.assert_allclose(again.deaths, bars.deaths, rtol=0, atol=cfg.paths.saddle_tol)
