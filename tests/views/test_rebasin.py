"""A run's landscape modulo permutation symmetry as the pages show it (core/views/rebasin.py)
and the re-basin figure."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from core.engine.chain import straight_chains
from core.engine.saddles import dense_max
from core.nets.align import align_minima, apply_permutation, random_permutations
from core.nets.models import build_model, init_thetas
from core.nets.permutations import permutation_spec
from core.views.analysis import run_objective
from core.views.dashboard import death_kinds
from core.views.plots import barcode_figure, paired_barcode_figures, rebasin_figure
from core.views.rebasin import (
    landscape_points,
    rebasin_barriers,
    same_function_notes,
    same_functions,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def hand_barriers(run, thetas, values, paths) -> np.ndarray:
    """(E,) each stored pair's straight segment evaluated again from scratch: the run's
    n_points evenly spaced points, check_density points per interval, minus the higher end."""
    p = run.config.paths
    obj = run_objective(run)
    chains = list(straight_chains(thetas.to(obj.device), paths.pairs, p.n_points))
    top = np.maximum(values[paths.pairs[:, 0]], values[paths.pairs[:, 1]])
    return dense_max(obj, chains, p.check_density) - top


def test_barriers_before_and_after_equal_a_fresh_evaluation(aligned_runs):
    for run in aligned_runs.runs:
        b = rebasin_barriers(run)
        raw, al = run.paths, run.aligned.paths
        np.testing.assert_array_equal(b.pairs, raw.pairs)  # all pairs: both have every path
        v, va = run.minima.values, run.aligned.values
        # the definition, from the stored arrays
        np.testing.assert_array_equal(
            b.before, raw.straight - np.maximum(v[raw.pairs[:, 0]], v[raw.pairs[:, 1]])
        )
        np.testing.assert_array_equal(
            b.after, al.straight - np.maximum(va[al.pairs[:, 0]], va[al.pairs[:, 1]])
        )
        # ... and from scratch: the stored straight maximum is the checking-density maximum
        # where the optimised path stayed below it (else the final, denser one: never lower)
        for got, thetas, values, paths in (
            (b.before, run.minima.thetas, v, raw),
            (b.after, run.aligned.thetas, va, al),
        ):
            hand = hand_barriers(run, thetas, values, paths)
            above = hand + values[paths.pairs].max(1) > paths.saddles
            assert above.any()
            np.testing.assert_allclose(got[above], hand[above], rtol=0, atol=1e-6)
            assert np.all(got >= hand - 1e-6)
        assert b.lowered == int(np.sum(b.after < b.before))
        assert b.after.mean() < b.before.mean()  # alignment removes most of the barrier


def test_a_raw_run_has_no_barriers_to_compare(tiny_runs):
    with pytest.raises(ValueError, match="no aligned landscape"):
        rebasin_barriers(tiny_runs.run)
    with pytest.raises(ValueError, match="aligned must be False"):
        landscape_points(tiny_runs.run, aligned=True)


def test_landscape_points_are_the_raw_or_the_aligned_minima(aligned_runs):
    run = aligned_runs.run
    thetas, points, values, pairs = landscape_points(run)
    assert thetas is run.minima.thetas and points is run.paths.points
    thetas, points, values, pairs = landscape_points(run, aligned=True)
    assert torch.equal(thetas, run.aligned.thetas)
    np.testing.assert_array_equal(values, run.aligned.values)
    np.testing.assert_array_equal(pairs, run.aligned.paths.pairs)
    assert all(p.shape[1] == thetas.shape[1] for p in points)


def test_side_by_side_barcodes_share_one_loss_axis(aligned_runs):
    run = aligned_runs.run
    raw, al = run.barcode, run.aligned.barcode
    figs = paired_barcode_figures(raw, al, selected=1, death_kinds=({}, death_kinds(run, True)))
    deaths = np.concatenate([raw.deaths, al.deaths])
    ends = []
    for fig, bc, name in zip(figs, (raw, al), ("Raw", "Aligned"), strict=True):
        title = fig.layout.title.text
        assert title.startswith(f"{name} minima: TO-score sum {bc.to_score('sum'):.4g}, max")
        essential = [t for t in fig.data if t.type == "bar" and "essential" in t.name][0]
        ends.append(essential.base[0] + essential.x[0])
        finite = [t for t in fig.data if t.type == "bar" and t.name.startswith("minima")]
        assert sum(len(t.x) for t in finite) == len(bc) - 1
    assert ends[0] == ends[1] > deaths[np.isfinite(deaths)].max()  # one right edge
    assert figs[0].layout.xaxis.range == figs[1].layout.xaxis.range
    for fig, bc in zip(figs, (raw, al), strict=True):  # "no obstruction found" stays
        assert ("<br>" in fig.layout.title.text) == ("<br>" in barcode_figure(bc).layout.title.text)
    assert set(death_kinds(run, True)) == set(al.minimum[np.isfinite(al.deaths)].tolist())


def test_the_aligned_barcode_takes_each_pairs_lower_route(aligned_runs):
    """Modulo the symmetry, a pair's barrier is bounded by its raw and by its aligned path,
    whichever is lower. On the tiny runs every aligned path is the lower; with the raw path
    of one pair made lower (its saddle at its higher end: no barrier), the aligned landscape
    takes that raw path for the pair, its barcode is the one of the lower saddles, no bar dies
    later than in the raw barcode or in the aligned paths' own, and the death kinds read the
    held path."""
    from core.engine.barcode import barcode_from_graph, graph_matrix
    from core.engine.landscape import rounding_tol
    from core.runs.pipeline import aligned_landscape
    from core.runs.record import lower_routes

    run = aligned_runs.runs[0]  # width 4: aligned bars of 1e-2, not 1e-8
    v = run.minima.values
    raw = dataclasses.replace(run.paths, saddles=run.paths.saddles.copy())
    e = int(np.argmax(run.aligned.paths.saddles - v[run.aligned.paths.pairs].max(1)))
    i, j = run.aligned.paths.pairs[e]
    f = raw.pairs.tolist().index([i, j])
    raw.saddles[f] = max(v[i], v[j])
    got = aligned_landscape(run.config, run_objective(run), run.minima, raw)
    al, va = got.paths, got.values
    pairs, saddles, held = lower_routes(raw, al)
    own = {tuple(q): s for q, s in zip(al.pairs.tolist(), al.saddles, strict=True)}
    for (a, b), s, (paths, r) in zip(pairs.tolist(), saddles, held, strict=True):
        before = raw.saddles[raw.pairs.tolist().index([a, b])]
        assert s == min(before, own[a, b]) == paths.saddles[r]
        assert paths is (raw if before <= own[a, b] else al)
    paths, r = held[pairs.tolist().index([i, j])]
    assert paths is raw and r == f
    tol = rounding_tol(va)
    lower = barcode_from_graph(va, graph_matrix(va, pairs, saddles), tol=tol)
    alone = barcode_from_graph(va, graph_matrix(va, al.pairs, al.saddles), tol=tol)
    np.testing.assert_array_equal(got.barcode.deaths, lower.deaths)
    assert lower.to_score("sum") < alone.to_score("sum")  # the raw pair's route counted
    death = {int(m): d for m, d in zip(run.barcode.minimum, run.barcode.deaths, strict=True)}
    mine = {int(m): d for m, d in zip(alone.minimum, alone.deaths, strict=True)}
    for m, d in zip(lower.minimum, lower.deaths, strict=True):
        assert d <= death[int(m)] + tol and d <= mine[int(m)] + tol
    kinds = death_kinds(dataclasses.replace(run, paths=raw, aligned=got), aligned=True)
    for m, d, (a, b) in zip(lower.minimum, lower.deaths, lower.saddle_edge, strict=True):
        if np.isfinite(d):
            paths, r = held[pairs.tolist().index(sorted([int(a), int(b)]))]
            want = "no barrier" if paths.status[r] == "no barrier" else None
            assert want is None or kinds[int(m)] == want
            assert (kinds[int(m)] == "certified saddle") == bool(paths.certified[r])


def test_rebasin_figure_draws_every_pair_against_the_diagonal():
    pairs = np.array([[0, 1], [0, 2], [1, 2]])
    before, after = np.array([2.0, 1.0, 0.5]), np.array([0.1, 1.5, 0.0])
    fig = rebasin_figure(pairs, before, after, ident="run x")
    diagonal, points = fig.data
    assert list(diagonal.x) == list(diagonal.y)
    assert list(points.x) == [2.0, 1.0, 0.5] and list(points.y) == [0.1, 1.5, 0.0]
    assert points.customdata.tolist() == pairs.tolist()
    assert "lower after alignment: 2 of 3" in fig.layout.title.text
    assert diagonal.x[0] <= 0.0 and diagonal.x[-1] >= 2.0  # every point inside the axes
    with pytest.raises(ValueError, match="one entry per pair"):
        rebasin_figure(pairs, before, after[:2])


def test_minima_that_alignment_brings_together_are_one_function(aligned_runs):
    run = aligned_runs.run
    assert same_functions(run) == [] and same_function_notes(run) == []  # distinct minima
    # a tanh network, a copy with its hidden units permuted and negated (and a little noise,
    # as two trainings leave), and another network
    model = build_model("mlp", 6, 2, (1, 8, 8), 5, "tanh")
    spec = permutation_spec(model)
    a, c = init_thetas(model, 2, seed=0)
    noise = 1e-5 * torch.randn(a.shape, generator=torch.Generator().manual_seed(0))
    b = apply_permutation(spec, a, random_permutations(spec, seed=1)) + noise
    raw = torch.stack([a, b, c])
    fake = dataclasses.replace(
        run,
        minima=dataclasses.replace(run.minima, thetas=raw),
        aligned=dataclasses.replace(run.aligned, thetas=align_minima(model, raw)),
    )
    [(i, j, near, far)] = same_functions(fake)
    assert (i, j) == (0, 1)
    assert near == pytest.approx(noise.norm().item(), rel=1e-3)  # the noise (float32 sums)
    assert far == pytest.approx((a - b).norm().item(), rel=1e-6)
    assert same_function_notes(fake)[0].startswith("Minima 0 and 1 are one function")


def test_the_route_search_check_reads_the_barcode_modulo_the_symmetry(aligned_runs):
    """``route_search(run, modulo=True)`` compares the barcode modulo the symmetry with the one
    that both sets of paths give one step narrower (``Paths.narrow``): equal when the widening
    lowered no pair; when the widening lowered the pair behind the longest bar, in both sets of
    paths, the narrower score is the barcode of each pair's lower narrower saddle, and the
    words say that the search has not settled."""
    from core.engine.barcode import barcode_from_graph, graph_matrix
    from core.engine.landscape import rounding_tol
    from core.views.dashboard import route_search, route_search_words

    run = aligned_runs.runs[0]
    assert route_search(run, modulo=True) is None  # no restarts, no neighbour legs
    cfg = run.config.replace(paths={"restarts": 1})
    al = run.aligned

    def narrowed(raw_narrow, al_narrow):
        raw = dataclasses.replace(run.paths, narrow=raw_narrow)
        aligned = dataclasses.replace(al, paths=dataclasses.replace(al.paths, narrow=al_narrow))
        return dataclasses.replace(run, config=cfg, paths=raw, aligned=aligned)

    same = narrowed(run.paths.saddles.copy(), al.paths.saddles.copy())
    half, full, agree = route_search(same, modulo=True)
    assert half == full == pytest.approx(al.barcode.to_score("sum"), abs=1e-12) and agree
    assert "(0.0% lower), within the stated resolution" in route_search_words(same, modulo=True)
    assert route_search(dataclasses.replace(same, aligned=None), modulo=True) is None

    b = al.barcode
    m = int(np.nanargmax(np.where(np.isfinite(b.lengths), b.lengths, np.nan)))
    edge = sorted(int(x) for x in b.saddle_edge[m])
    rise = 0.1  # far above the stated resolution
    raw_n, al_n = run.paths.saddles.copy(), al.paths.saddles.copy()
    raw_n[run.paths.pairs.tolist().index(edge)] += rise
    al_n[al.paths.pairs.tolist().index(edge)] += rise
    moved = narrowed(raw_n, al_n)
    v = al.values
    lower = {}
    for paths, n in ((run.paths, raw_n), (al.paths, al_n)):
        for (i, j), s in zip(paths.pairs.tolist(), np.fmax(n, paths.saddles), strict=True):
            lower[i, j] = min(lower.get((i, j), np.inf), s)
    pairs = np.array(sorted(lower))
    want = barcode_from_graph(
        v,
        graph_matrix(v, pairs, np.array([lower[tuple(q)] for q in pairs.tolist()])),
        tol=rounding_tol(v),
    ).to_score("sum")
    half, full, agree = route_search(moved, modulo=True)
    assert half == pytest.approx(want, abs=1e-12) and half > full + 1e-3 and not agree
    words = route_search_words(moved, modulo=True)
    assert words.startswith("Route search modulo the symmetry: without its restart")
    assert "has not settled" in words and "--path-restarts 2" in words
    from core.__main__ import format_run

    text = format_run(moved)
    assert words[0].lower() + words[1:] in text.splitlines()
    assert f", alignment {al.seconds:.1f} s" in text  # its time beside the minima's and paths'
