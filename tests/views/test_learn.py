"""The Learn page's flood: pools named and coloured by the elder rule, events equal to the exact
barcode, the 1-D landscape's bars equal to the polynomial's exact ones, and the flood figure's
frames."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from core.engine.separable import well_bars
from core.engine.toy import exact_barcode, get_toy, sublevel_components
from core.views.learn import (
    curve_coef,
    curve_flood,
    flood_of,
    mark_words,
    minimum_name,
    own_flood,
    toy_flood,
)
from core.views.plots.flood import at_frame, flood_figure
from core.views.plots.pools import CLEAR, color_of, pool_scale, pool_values


@pytest.fixture(scope="module")
def wells():
    return toy_flood("wells", resolution=201, every=1)


def _array(v) -> np.ndarray:
    """A figure dict's array: a list, a numpy array or a typed array {"dtype", "bdata"}."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).astype(float)
    return np.asarray(v, float)


def _oldest_in_components(flood, level):
    """Oracle: label {Z <= level} afresh; each component is named after the oldest (lowest
    numbered) minimum inside it."""
    labels = sublevel_components(flood.Z, level)
    cols = np.searchsorted(flood.xs, flood.minima[:, 0])
    rows = (
        np.zeros(len(flood), int)
        if flood.ys is None
        else np.searchsorted(flood.ys, flood.minima[:, 1])
    )
    out = np.full(labels.shape, -1)
    for comp in range(labels.max() + 1):
        inside = [
            k
            for k in range(len(flood))
            if flood.births[k] <= level and labels[rows[k], cols[k]] == comp
        ]
        out[labels == comp] = min(inside)
    return out


def test_a_curve_drawn_as_numbers():
    #  value  3  1  4  0  5  2  6
    #  index  0  1  2  3  4  5  6       minima: A = index 3 (0), B = index 1 (1), C = index 5 (2)
    #  B's pool spills into A's over index 2 (4); C's over index 4 (5)
    flood = flood_of(np.arange(7.0), None, [3, 1, 4, 0, 5, 2, 6])
    assert flood.births.tolist() == [0, 1, 2]
    assert flood.deaths.tolist() == [np.inf, 4, 5]
    assert flood.into.tolist() == [-1, 0, 0]
    assert flood.pools(3)[0].tolist() == [1, 1, -1, 0, -1, 2, -1]  # B's pool, A's, C's
    assert flood.pools(4)[0].tolist() == [0, 0, 0, 0, -1, 2, -1]  # B merged: A's colour
    assert flood.pools(-1)[0].tolist() == [-1] * 7
    assert flood.names == ["A", "B", "C"]
    assert [(e.level, e.kind, e.minimum) for e in flood.events()] == [
        (0, "birth", 0),
        (1, "birth", 1),
        (2, "birth", 2),
        (4, "death", 1),
        (5, "death", 2),
    ]
    assert mark_words(flood, 4.0) == (
        "level 4: the pool of minimum B merges into A's at the saddle between them; B's bar "
        "ends (length 3). Now 2 pools: A, C."
    )


@pytest.mark.parametrize("name", ["wells", "camel", "muller_brown"])
def test_every_pool_is_named_after_its_oldest_minimum_at_every_level(name):
    flood = toy_flood(name, resolution=161, every=1)
    for level in flood.levels(40):
        assert np.array_equal(flood.pools(level), _oldest_in_components(flood, level)), level


def test_a_minimum_keeps_its_colour_from_birth_to_death_and_then_takes_the_elders(wells):
    for k, (b, d) in enumerate(zip(wells.births, wells.deaths, strict=True)):
        for level in wells.levels(60):
            owner = wells.owner_of(level)[k]
            if level < b:
                assert owner == -1
            elif level < d:
                assert owner == k
            else:  # merged: the pool has an older minimum's name
                assert wells.births[owner] <= b and owner < k
        if np.isfinite(d):
            assert wells.owner_of(d)[k] == wells.into[k] != k


def test_the_heatmap_colours_are_the_pool_owners_colours(wells):
    """pool_values + pool_scale (the frame-by-frame colour trick) paint each flooded point in
    its pool's colour and leave the rest clear."""
    values = pool_values(wells) / len(wells)  # (H, W) positions on the colour scale
    for level in wells.levels(12)[1:]:
        scale = pool_scale(wells, level)
        stops = np.array([s[0] for s in scale])
        at = np.searchsorted(stops, values, side="right") - 1  # the stop at or below each point
        painted = np.array([scale[i][1] for i in at.ravel()]).reshape(values.shape)
        pools = wells.pools(level)
        want = np.where(
            pools >= 0,
            np.array([color_of(max(p, 0)) for p in pools.ravel()]).reshape(pools.shape),
            CLEAR,
        )
        # a point exactly on a band's edge may go either way; nothing else may differ
        assert np.mean(painted != want) < 1e-3, level


@pytest.mark.parametrize("name", ["wells", "rastrigin"])
def test_the_events_are_the_exact_barcode(name):
    flood = toy_flood(name)
    exact = exact_barcode(get_toy(name), 801)
    events = flood.events()
    births = sorted(e.level for e in events if e.kind == "birth")
    deaths = sorted(e.level for e in events if e.kind == "death")
    assert births == sorted(exact.births.tolist())
    assert deaths == sorted(exact.deaths[np.isfinite(exact.deaths)].tolist())
    assert flood.Z.shape == (201, 201)  # every 4th point of the 801 grid is drawn
    for level in flood.levels(30):  # pools on the drawn grid belong to alive bars
        assert set(np.unique(flood.pools(level))) - {-1} <= set(np.flatnonzero(flood.alive(level)))


def test_the_curve_bars_equal_the_polynomial_exact_bars():
    flood, exact = curve_flood(), well_bars(curve_coef())
    np.testing.assert_allclose(flood.births, exact.births, rtol=0, atol=1e-12)
    np.testing.assert_allclose(flood.deaths, exact.deaths, rtol=0, atol=1e-12)
    np.testing.assert_allclose(flood.minima[:, 0], exact.minima, rtol=0, atol=1e-12)
    assert len(flood) == 4 and flood.into.tolist() == [-1, 0, 1, 1]  # C and D merge into B


def test_flood_of_rejects_bad_arguments():
    with pytest.raises(ValueError, match="every must be a positive integer"):
        flood_of(np.arange(3.0), None, [1.0, 0.0, 1.0], every=0)
    with pytest.raises(ValueError, match="Z must have shape"):
        flood_of(np.arange(3.0), np.arange(2.0), np.zeros((3, 3)))


def test_minimum_names():
    assert [minimum_name(k) for k in (0, 2, 25, 26, 27)] == ["A", "C", "Z", "A2", "B2"]


@pytest.mark.parametrize("make", [curve_flood, lambda: toy_flood("ring", resolution=121, every=2)])
def test_a_frame_started_from_the_cached_figure_equals_a_figure_built_there(make):
    flood = make()
    levels = flood.levels(20)
    spec = flood_figure(flood, levels, 0).to_dict()
    i = int(np.searchsorted(levels, flood.marks[-1]))
    built = flood_figure(flood, levels, i).to_dict()
    started = at_frame(spec, i)
    assert started["layout"]["title"]["text"] == built["layout"]["title"]["text"]
    assert started["layout"]["sliders"][0]["active"] == i
    for got, want in zip(started["data"], built["data"], strict=True):
        assert got.keys() == want.keys()
        if "y" in want:
            np.testing.assert_array_equal(_array(got["y"]), _array(want["y"]))
        if "colorscale" in want:
            assert [tuple(s) for s in got["colorscale"]] == [tuple(s) for s in want["colorscale"]]
    assert spec["layout"]["sliders"][0]["active"] == 0  # the cached figure is unchanged
    names = [f["name"] for f in spec["frames"]]
    assert len(set(names)) == len(names) and names[:1] == ["0"]


def test_your_own_wells_have_the_exact_barcode_of_their_grid():
    wells = [(-1.5, -1.0, 1.0), (1.3, -1.2, 0.8), (1.1, 1.3, 0.6), (-1.2, 1.4, 0.4)]
    flood = own_flood(wells)  # the wells toy's formula and wells
    exact = exact_barcode(get_toy("wells"), 201)
    np.testing.assert_allclose(np.sort(flood.births), np.sort(exact.births), atol=1e-12)
    np.testing.assert_array_equal(np.isinf(np.sort(flood.deaths)), np.isinf(np.sort(exact.deaths)))
    np.testing.assert_allclose(
        np.sort(flood.deaths)[:-1], np.sort(exact.deaths)[:-1], rtol=0, atol=1e-12
    )
    deeper = own_flood([(-1.5, -1.0, 1.0), (1.3, -1.2, 1.6)])  # the second well now the deepest
    assert len(deeper) == 2 and deeper.minima[0, 0] == pytest.approx(1.3, abs=0.05)
    with pytest.raises(ValueError, match="wells must be 1 to"):
        own_flood([])
    with pytest.raises(ValueError, match="a well must lie in"):
        own_flood([(4.0, 0.0, 1.0)])
