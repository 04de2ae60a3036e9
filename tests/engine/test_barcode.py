"""Tests for core.engine.barcode: hand-drawn graphs with exact bars, and an independent oracle.

Pictures: ``name(value)`` is a minimum, a number on an edge is its saddle value, a missing
edge means no path was computed (``inf`` in the saddle matrix).
"""

import json
from dataclasses import FrozenInstanceError

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.engine.barcode import Barcode, barcode_from_graph

INF = np.inf


def graph(values, edges):
    """values (K,) and {(i, j): saddle} -> (values, saddles (K, K)) with inf for no edge."""
    k = len(values)
    saddles = np.full((k, k), INF)
    for (i, j), s in edges.items():
        saddles[i, j] = saddles[j, i] = s
    return np.asarray(values, dtype=float), saddles


def bars(b):
    """{minimum: (birth, death, merges_into, saddle_edge)} for exact comparisons."""
    return {
        int(m): (float(bi), float(d), int(t), tuple(int(x) for x in e))
        for m, bi, d, t, e in zip(
            b.minimum, b.births, b.deaths, b.merges_into, b.saddle_edge, strict=True
        )
    }


# ---------------------------------------------------------------------------------------------
# Hand-drawn graphs


def test_passes_are_every_edge_across_a_bars_end_within_the_tolerance():
    #   a(0.0) -- 2.0 -- b(0.5) -- 0.8 -- c(0.6) -- 1.2 -- d(1.0)
    #   a -- 2.0 + 1e-9 -- c,  a -- 3.0 -- d,  b -- 2.0 -- d
    # b's bar ends at 2.0 on (a, b), but (a, c) crosses the same cut {b, c, d} as high;
    # (b, d) lies inside the cut and (a, d) is higher: neither crosses the pass
    values, s = graph(
        [0.0, 0.5, 0.6, 1.0],
        {(0, 1): 2.0, (1, 2): 0.8, (0, 2): 2.0 + 1e-9, (2, 3): 1.2, (0, 3): 3.0, (1, 3): 2.0},
    )
    b = barcode_from_graph(values, s)
    assert b.saddle_edge[b.minimum.tolist().index(1)].tolist() == [0, 1]
    assert b.passes(1e-6).tolist() == [[0, 1], [0, 2], [1, 2], [2, 3]]
    assert b.passes(0.0).tolist() == [[0, 1], [1, 2], [2, 3]]  # (a, c) higher by 1e-9
    assert b.passes(0.25).tolist() == [[0, 1], [0, 2]]  # the bars of c and d are 0.2 long
    assert b.passes(2.0).shape == (0, 2)


def test_line_of_three():
    #   a(0.0) ---- 2.0 ---- b(1.0) ---- 1.5 ---- c(0.5)
    # level 1.5: b meets c, c is lower -> b = [1.0, 1.5) into c
    # level 2.0: {b, c} meets a, a is lower -> c = [0.5, 2.0) into a (through b)
    b = barcode_from_graph(*graph([0.0, 1.0, 0.5], {(0, 1): 2.0, (1, 2): 1.5}))
    assert bars(b) == {
        0: (0.0, INF, -1, (-1, -1)),
        1: (1.0, 1.5, 2, (1, 2)),
        2: (0.5, 2.0, 0, (0, 1)),
    }
    assert b.minimum.tolist() == [0, 2, 1]  # birth ascending
    assert b.lengths.tolist() == [INF, 1.5, 0.5]
    assert b.segment_of().tolist() == [INF, 0.5, 1.5]  # per vertex
    assert b.to_score("sum") == 2.0
    assert b.to_score() == 2.0
    assert b.to_score("max") == 1.5
    assert len(b) == 3 and b.n_essential == 1


def test_route_through_a_third_minimum_beats_the_direct_edge():
    #            b(2.0)
    #          /        \
    #       6.0          4.0
    #        /              \
    #   a(0.0) ---- 3.0 ---- c(1.0)
    # level 3.0: c dies into a. level 4.0: b meets {a, c} through c and dies there, into a
    # (the elder of the other component), not at its direct edge 6.0.
    b = barcode_from_graph(*graph([0.0, 2.0, 1.0], {(0, 1): 6.0, (1, 2): 4.0, (0, 2): 3.0}))
    assert bars(b) == {
        0: (0.0, INF, -1, (-1, -1)),
        1: (2.0, 4.0, 0, (1, 2)),
        2: (1.0, 3.0, 0, (0, 2)),
    }
    assert b.to_score("sum") == 4.0 and b.to_score("max") == 2.0


def test_younger_dies_into_the_elder_of_the_other_component():
    #   a(0.0) ---- 5.0 ---- b(2.0) ---- 2.5 ---- c(1.5) ---- 3.0 ---- d(1.0)
    # 2.5: b into c. 3.0: {b, c} meets d: c into d. 5.0: {b, c, d} meets a through b: d into a.
    values, saddles = graph([0.0, 2.0, 1.5, 1.0], {(0, 1): 5.0, (1, 2): 2.5, (2, 3): 3.0})
    b = barcode_from_graph(values, saddles)
    assert bars(b) == {
        0: (0.0, INF, -1, (-1, -1)),
        1: (2.0, 2.5, 2, (1, 2)),
        2: (1.5, 3.0, 3, (2, 3)),
        3: (1.0, 5.0, 0, (0, 1)),
    }
    assert b.minimum.tolist() == [0, 3, 2, 1]
    assert b.to_score("sum") == 0.5 + 1.5 + 4.0 and b.to_score("max") == 4.0


def test_equal_values_bars_are_unique_and_merge_into_the_surviving_tied_minimum():
    #   a(1.0) ---- 2.0 ---- b(1.0) ---- 2.0 ---- c(1.0) ---- 4.0 ---- d(0.5)
    # a, b, c tie: two of them die at 2.0 into the third (gudhi picks which), and that one
    # dies at 4.0 into d. The bars as (birth, death) pairs do not depend on the choice.
    edges = {(0, 1): 2.0, (1, 2): 2.0, (2, 3): 4.0}
    b = barcode_from_graph(*graph([1.0, 1.0, 1.0, 0.5], edges))
    got = bars(b)
    assert sorted(zip(b.births.tolist(), b.deaths.tolist(), strict=True)) == [
        (0.5, INF),
        (1.0, 2.0),
        (1.0, 2.0),
        (1.0, 4.0),
    ]
    survivor = next(m for m, (_, d, _, _) in got.items() if d == 4.0)
    assert got[survivor][2:] == (3, (2, 3))
    assert all(got[m][2] == survivor for m in {0, 1, 2} - {survivor})
    assert b.minimum.tolist() == [3, 0, 1, 2]  # ties in birth: vertex index
    assert b.to_score("sum") == 5.0 and b.to_score("max") == 3.0


def test_all_equal_values_and_saddles():
    #   a(0.0) ---- 0.0 ---- c(0.0) ---- 0.0 ---- b(0.0)
    # Everything happens at level 0: two zero-length bars and one essential bar.
    b = barcode_from_graph(*graph([0.0, 0.0, 0.0], {(0, 2): 0.0, (1, 2): 0.0}))
    assert sorted(b.deaths.tolist()) == [0.0, 0.0, INF]
    assert b.n_essential == 1 and b.to_score("sum") == 0.0 and b.to_score("max") == 0.0
    # the merges form a chain ending at the essential bar (which one merges first is a tie)
    target = dict(zip(b.minimum.tolist(), b.merges_into.tolist(), strict=True))
    essential = int(b.minimum[np.isinf(b.deaths)][0])
    for m in range(3):
        while target[m] != -1:
            m = target[m]
        assert m == essential


def test_single_minimum_is_one_essential_bar():
    b = barcode_from_graph([0.25], [[7.0]])  # the diagonal is ignored
    assert bars(b) == {0: (0.25, INF, -1, (-1, -1))}
    assert b.saddles.tolist() == [[0.25]]
    assert b.to_score("sum") == 0.0 and b.to_score("max") == 0.0
    assert b.n_essential == 1


def test_disconnected_graph_has_one_essential_bar_per_component():
    #   a(0.0) ---- 1.0 ---- b(0.5)        c(0.2)  (no path to c)
    b = barcode_from_graph(*graph([0.0, 0.5, 0.2], {(0, 1): 1.0}))
    assert bars(b) == {
        0: (0.0, INF, -1, (-1, -1)),
        1: (0.5, 1.0, 0, (0, 1)),
        2: (0.2, INF, -1, (-1, -1)),
    }
    assert b.n_essential == 2
    assert b.to_score("sum") == 0.5


def test_zero_length_bar_is_kept_and_near_endpoint_saddles_are_clamped():
    #   a(0.0) ---- 1.25 ---- b(1.0) ---- (1.0 - 1e-12) ---- c(0.5)
    # The path b-c peaks at b itself: b dies at once (a zero-length bar), into c. That saddle
    # is within tol below b's value and is clamped up to 1.0. Then c dies at 1.25 into a.
    b = barcode_from_graph(*graph([0.0, 1.0, 0.5], {(0, 1): 1.25, (1, 2): 1.0 - 1e-12}))
    assert bars(b) == {
        0: (0.0, INF, -1, (-1, -1)),
        1: (1.0, 1.0, 2, (1, 2)),
        2: (0.5, 1.25, 0, (0, 1)),
    }
    assert b.saddles[1, 2] == 1.0 and b.saddles[2, 1] == 1.0
    assert b.saddles.diagonal().tolist() == [0.0, 1.0, 0.5]
    assert b.lengths.tolist() == [INF, 0.75, 0.0]
    assert b.to_score("sum") == 0.75 and b.to_score("max") == 0.75


def test_asymmetric_within_tol_takes_the_lower_entry_and_inputs_are_not_modified():
    values = np.array([0.0, 1.0])
    saddles = np.array([[9.0, 2.0], [2.0 + 1e-10, 9.0]])
    before = saddles.copy()
    b = barcode_from_graph(values, saddles)
    assert b.deaths.tolist() == [INF, 2.0]
    assert np.array_equal(saddles, before)


def test_barcode_is_frozen_and_read_only():
    b = barcode_from_graph(*graph([0.0, 1.0], {(0, 1): 2.0}))
    with pytest.raises(FrozenInstanceError):
        b.deaths = np.zeros(2)
    with pytest.raises(ValueError, match="read-only"):
        b.deaths[0] = 0.0


# ---------------------------------------------------------------------------------------------
# Serialization


def test_dict_round_trip_through_json_is_exact():
    values, saddles = graph([0.0, 1.0 / 3.0, 0.2, 7.5], {(0, 1): 0.7, (1, 2): np.pi})
    b = barcode_from_graph(values, saddles)
    d = json.loads(json.dumps(b.to_dict(), allow_nan=False))
    assert d["deaths"][0] is None  # inf is encoded as JSON null
    assert d["saddles"][0][3] is None
    back = Barcode.from_dict(d)
    assert back == b
    for name in ("births", "deaths", "values", "saddles"):
        assert getattr(back, name).dtype == np.float64
    assert back.saddle_edge.dtype == np.int64 and back.saddle_edge.shape == (4, 2)


def test_from_dict_rejects_unknown_and_missing_keys_and_bad_entries():
    d = barcode_from_graph(*graph([0.0, 1.0], {(0, 1): 2.0})).to_dict()
    with pytest.raises(ValueError, match="unknown key 'extra'"):
        Barcode.from_dict({**d, "extra": 1})
    del d["deaths"]
    with pytest.raises(ValueError, match="missing key 'deaths'"):
        Barcode.from_dict(d)
    d = barcode_from_graph(*graph([0.0, 1.0], {(0, 1): 2.0})).to_dict()
    with pytest.raises(ValueError, match="deaths"):
        Barcode.from_dict({**d, "deaths": [None, "inf"]})
    with pytest.raises(ValueError, match="merges_into must hold integers"):
        Barcode.from_dict({**d, "merges_into": [-1, 0.5]})
    with pytest.raises(ValueError, match="births"):
        Barcode.from_dict({**d, "births": [0.0, 0.5]})


# ---------------------------------------------------------------------------------------------
# Bad inputs


@pytest.mark.parametrize(
    ("values", "saddles", "match"),
    [
        ([0.0, np.nan], [[0, 1], [1, 0]], r"values\[1\] = nan"),
        ([0.0, INF], [[0, 1], [1, 0]], r"values\[1\] = inf"),
        ([], np.zeros((0, 0)), "values"),
        ([[0.0]], [[0.0]], "values"),
        ([0.0, 1.0], [[0.0, 1.0]], r"saddles must have shape"),
        ([0.0, 1.0], [[0, 1.0], [1.5, 0]], r"saddles must be symmetric"),
        ([0.0, 1.0], [[0, INF], [1.0, 0]], r"saddles must be symmetric"),
        ([0.0, 1.0], [[0, np.nan], [np.nan, 0]], r"saddles\[0, 1\] = nan"),
        ([0.0, 1.0], [[0, -INF], [-INF, 0]], r"saddles\[0, 1\] = -inf"),
        ([0.0, 1.0], [[0, 0.5], [0.5, 0]], r"saddles\[0, 1\] = 0.5 is below .*values\[1\] = 1.0"),
    ],
)
def test_bad_graph_raises_naming_the_argument(values, saddles, match):
    with pytest.raises(ValueError, match=match):
        barcode_from_graph(values, saddles)


@pytest.mark.parametrize("tol", [-1.0, np.nan, "x"])
def test_bad_tol_raises(tol):
    with pytest.raises(ValueError, match="tol"):
        barcode_from_graph([0.0], [[0.0]], tol=tol)


def test_bad_score_kind_raises_naming_kind():
    b = barcode_from_graph([0.0], [[0.0]])
    with pytest.raises(ValueError, match="kind.*'mean'"):
        b.to_score("mean")


# ---------------------------------------------------------------------------------------------
# Independent oracle: Kruskal over edges by saddle value, union-find, elder rule (no gudhi)


def oracle(values, saddles):
    """{vertex: (birth, death, merges_into)} and the number of connected components."""
    k = len(values)
    key = [(values[i], i) for i in range(k)]  # elder = lowest value, ties by smaller index
    parent = list(range(k))
    elder = list(range(k))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    out = {}
    edges = sorted((saddles[i][j], i, j) for i in range(k) for j in range(i + 1, k))
    for s, i, j in edges:
        ri, rj = find(i), find(j)
        if s == INF or ri == rj:
            continue
        old, young = sorted((ri, rj), key=lambda r: key[elder[r]])
        out[elder[young]] = (values[elder[young]], s, elder[old])
        parent[young] = old
    roots = {find(i) for i in range(k)}
    for r in roots:
        out[elder[r]] = (values[elder[r]], INF, -1)
    return out, len(roots)


# values on a coarse grid (many ties) or arbitrary floats; saddles = max endpoint + offset
_number = st.one_of(
    st.integers(0, 4).map(lambda n: n / 4), st.floats(-100, 100, allow_subnormal=False)
)


@st.composite
def graphs(draw):
    k = draw(st.integers(1, 9))
    values = draw(st.lists(_number, min_size=k, max_size=k))
    saddles = np.full((k, k), INF)
    for i in range(k):
        for j in range(i + 1, k):
            if draw(st.booleans()) or draw(st.booleans()):  # about 3/4 of the edges exist
                offset = abs(draw(_number))
                saddles[i, j] = saddles[j, i] = max(values[i], values[j]) + offset
    return values, saddles


@settings(max_examples=200, deadline=None)
@given(graphs())
def test_matches_independent_oracle(g):
    values, saddles = g
    b = barcode_from_graph(values, saddles)
    expected, n_components = oracle(values, saddles.tolist())
    got = bars(b)
    # 1. the bars as (birth, death) pairs are unique even with ties
    assert sorted((bi, d) for bi, d, _, _ in got.values()) == sorted(
        (bi, d) for bi, d, _ in expected.values()
    )
    assert sorted(b.births.tolist()) == sorted(values)
    assert b.n_essential == n_components
    # 2. per minimum: unique when no two minima tie; merges_into also needs untied saddles
    finite = saddles[np.triu_indices(len(values), k=1)]
    finite = finite[np.isfinite(finite)].tolist()
    if len(set(values)) == len(values):
        assert {m: (bi, d) for m, (bi, d, _, _) in got.items()} == {
            m: (bi, d) for m, (bi, d, _) in expected.items()
        }
        if len(set(finite)) == len(finite):
            assert {m: t for m, (_, _, t, _) in got.items()} == {
                m: t for m, (_, _, t) in expected.items()
            }
    # 3. invariants that hold with ties too
    for m, (birth, death, target, (i, j)) in got.items():
        assert birth == values[m]
        if death == INF:
            assert target == -1 and (i, j) == (-1, -1)
            continue
        assert i < j and b.saddles[i, j] == death
        assert values[target] <= values[m] and target != m  # merges into an elder
        assert got[target][1] >= death  # ... which survives that merge
    # 4. order, scores, per-vertex segments
    order = sorted(range(len(values)), key=lambda v: (values[v], v))
    assert b.minimum.tolist() == order
    lengths = [d - bi for bi, d, _, _ in got.values() if d != INF]
    assert b.to_score("sum") == pytest.approx(sum(lengths), rel=1e-12, abs=0.0)
    assert b.to_score("max") == (max(lengths) if lengths else 0.0)
    assert b.segment_of().tolist() == [got[v][1] - got[v][0] for v in range(len(values))]
    assert Barcode.from_dict(json.loads(json.dumps(b.to_dict()))) == b


def test_graph_matrix_places_values_and_symmetric_saddles():
    from core.engine.barcode import graph_matrix

    s = graph_matrix([0.0, 1.0, 2.0], [[0, 2], [1, 2]], [3.0, 4.0])
    want = np.array([[0.0, np.inf, 3.0], [np.inf, 1.0, 4.0], [3.0, 4.0, 2.0]])
    np.testing.assert_array_equal(s, want)
    np.testing.assert_array_equal(graph_matrix([5.0], np.zeros((0, 2)), []), [[5.0]])
