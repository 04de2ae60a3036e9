"""Profiles, planes and tables of a tiny real run (``tiny_runs`` from conftest.py)."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from core.engine.evaluate import values_of
from core.engine.paths import SPLIT
from core.views import analysis


@pytest.fixture(scope="module")
def run(tiny_runs):
    return tiny_runs.run


def test_profile_max_is_the_stored_saddle(run):
    """Saddle honesty: anyone re-evaluating the stored path gets the stored saddle."""
    values = np.asarray(run.minima.values)
    for e, (i, j) in enumerate(run.paths.pairs):
        prof = analysis.path_profile_of(run, e)
        assert prof.pair == (i, j) and prof.density == run.paths.densities[e]
        assert prof.saddle == run.paths.saddles[e]
        assert prof.saddle_recomputed == pytest.approx(prof.saddle, rel=1e-6)
        # both curves run from minimum i to minimum j
        for curve in (prof.values, prof.straight_values):
            assert curve[0] == pytest.approx(values[i], rel=1e-5)
            assert curve[-1] == pytest.approx(values[j], rel=1e-5)
        assert prof.s[0] == 0 and prof.s[-1] == pytest.approx(1.0)
        assert len(prof.straight_s) == len(prof.s)
        assert len(prof.nodes_s) == run.paths.points[e].shape[0]
        assert prof.length >= prof.straight_length * (1 - 1e-9)


def test_profile_places_the_join_on_the_node_nearest_its_minimum(run):
    """A path joined at minimum k: the profile names k and puts it at the stored node
    nearest to it (here a stored path is given a node on k, as a join would have)."""
    e = 0
    i, j = (int(t) for t in run.paths.pairs[e])
    k = next(m for m in range(len(run.minima.values)) if m not in (i, j))
    points = [p.clone() for p in run.paths.points]
    points[e][2] = run.minima.thetas[k]
    via = np.full(len(run.paths), -1)
    via[e] = k
    joined = dataclasses.replace(run, paths=dataclasses.replace(run.paths, points=points, via=via))
    prof = analysis.path_profile_of(joined, e)
    assert prof.via == k and prof.via_s == prof.nodes_s[2]
    assert prof.values[2 * prof.density] == pytest.approx(run.minima.values[k], rel=1e-5)
    plain = analysis.path_profile_of(run, e)
    assert plain.via == -1 and math.isnan(plain.via_s)
    via[e] = SPLIT  # legs joined at a minimum that no start reached: the lowest interior node
    split = analysis.path_profile_of(
        dataclasses.replace(run, paths=dataclasses.replace(run.paths, points=points, via=via)), e
    )
    nodes = split.values[:: split.density]
    lowest = 1 + int(np.argmin(nodes[1:-1]))
    assert split.via == SPLIT and split.via_s == split.nodes_s[lowest]


def test_profile_density_and_bad_pair(run):
    coarse = analysis.path_profile_of(run, 0, density=2)
    n = run.paths.points[0].shape[0]
    assert coarse.density == 2 and len(coarse.s) == 2 * (n - 1) + 1
    with pytest.raises(ValueError, match="pair must be a path number"):
        analysis.path_profile_of(run, len(run.paths.points))
    with pytest.raises(ValueError, match="density"):
        analysis.path_profile_of(run, 0, density=0)


def test_objective_is_built_once_per_config(run):
    assert analysis.run_objective(run) is analysis.run_objective(run)


def _distance_to_plane(points, a, b, c):
    """Independent oracle: least-squares distance of points (N, P) from the affine plane."""
    basis = torch.stack([b - a, c - a]).double().T  # (P, 2)
    rel = (points - a).double().T  # (P, N)
    coef = torch.linalg.lstsq(basis, rel).solution  # (2, N)
    return (rel - basis @ coef).norm(dim=0)


def test_plane_through_three_minima(run):
    idx = (0, 1, 2)
    plane = analysis.plane_of(run, idx, resolution=9)
    values = np.asarray(run.minima.values)
    # the loss at the minima's plane coordinates is the minima's loss
    np.testing.assert_allclose(plane.minima_z, values[list(idx)], rtol=1e-5)
    assert plane.Z.shape == (9, 9) and np.isfinite(plane.Z).all()
    np.testing.assert_allclose(plane.minima_uv[0], [0, 0], atol=1e-12)
    assert abs(plane.minima_uv[1, 1]) < 1e-9 and plane.minima_uv[2, 1] > 0
    dist = float((run.minima.thetas[1] - run.minima.thetas[0]).double().norm())
    assert plane.minima_uv[1, 0] == pytest.approx(dist)
    # the grid covers the three minima with room to spare
    assert plane.u[0] < plane.minima_uv[:, 0].min() and plane.u[-1] > plane.minima_uv[:, 0].max()
    assert plane.v[0] < plane.minima_uv[:, 1].min() and plane.v[-1] > plane.minima_uv[:, 1].max()
    # batched grid values equal one-at-a-time evaluations (Z[i, j] is at (u[j], v[i]))
    obj = analysis.run_objective(run)
    for i, j in [(0, 0), (3, 7), (8, 2)]:
        theta = plane.lift([[plane.u[j], plane.v[i]]]).to(run.minima.thetas.dtype)
        assert plane.Z[i, j] == pytest.approx(float(values_of(obj, theta)[0]), rel=1e-5)
    # every stored path between two of the three minima, and how far it leaves the plane
    a, b, c = (run.minima.thetas[k] for k in idx)
    expected = {tuple(p) for p in run.paths.pairs if set(p) <= set(idx)}
    assert set(plane.paths_uv) == expected
    for e, pair in enumerate(run.paths.pairs):
        if tuple(pair) in expected:
            pts = run.paths.points[e]
            off = float(_distance_to_plane(pts, a, b, c).max())
            assert plane.off_plane[tuple(pair)] == pytest.approx(off, rel=1e-6, abs=1e-9)
            np.testing.assert_allclose(
                plane.paths_uv[tuple(pair)][0], plane.minima_uv[idx.index(pair[0])], atol=1e-9
            )


def test_plane_bad_input(run):
    with pytest.raises(ValueError, match="three distinct"):
        analysis.plane_of(run, (0, 0, 1))
    th = run.minima.thetas.clone()
    th[2] = th[0] + 2 * (th[1] - th[0])
    with pytest.raises(ValueError, match="collinear"):
        moved = dataclasses.replace(run, minima=dataclasses.replace(run.minima, thetas=th))
        analysis.plane_of(moved, (0, 1, 2))


def test_minima_table_matches_the_run(run):
    rows = analysis.minima_table(run)
    m, x, bars = run.minima, run.metrics, run.barcode
    assert [r["index"] for r in rows] == list(range(len(m)))
    columns = {"value": m.values, "grad_norm": m.grad_norms}
    for key in ("train_loss", "test_loss", "train_error", "gap_loss", "gap_error"):
        columns[key] = getattr(x, key)
    for key, col in columns.items():
        assert [r[key] for r in rows] == [float(v) for v in col], key
    assert [r["status"] for r in rows] == list(m.status)
    for n, k in enumerate(bars.minimum):
        row = rows[k]
        assert row["saddle"] == bars.deaths[n]
        if math.isinf(bars.deaths[n]):
            assert row["segment"] == math.inf and row["merges_into"] is None and row["via"] == ""
        else:
            assert row["segment"] == pytest.approx(bars.deaths[n] - bars.births[n])
            assert row["merges_into"] == bars.merges_into[n]
            i, j = bars.saddle_edge[n]
            assert row["via"] == f"{i}-{j}"
            assert bars.deaths[n] == pytest.approx(
                run.paths.saddles[run.paths.pairs.tolist().index([i, j])]
            )


def test_minima_rows_name_their_units(run):
    """The table a reader sees and downloads: every numeric column says its unit, errors in
    percent, and a stopping point is called one."""
    rows, raw = analysis.minima_rows(run), analysis.minima_table(run)
    assert len(rows) == len(raw)
    for header in rows[0]:
        if header not in (
            "minimum",
            "status",
            "merges into minimum",
            "through the path between minima",
        ):
            assert "(" in header and header.endswith(")"), header
    assert [r["train error (%)"] for r in rows] == [100 * r["train_error"] for r in raw]
    assert [r["loss: train CE + L2 (nats)"] for r in rows] == [r["value"] for r in raw]
    for r, st in zip(rows, run.minima.status, strict=True):
        assert (r["status"] == "minimum") == (st == "minimum")
        assert r["status"] == "minimum" or r["status"].startswith("stopping point")
