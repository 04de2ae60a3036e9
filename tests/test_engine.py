"""The engine end to end on analytic landscapes, against exact barcodes."""

import numpy as np
import pytest
import torch

from core import barcode_of, landscape_of
from core.pairs import all_pairs, bottleneck, uncertified_pairs
from core.toy import TOYS
from core.validate import SIGNIFICANT, TOLERANCE, compare_engine_to_exact


@pytest.mark.parametrize("name", sorted(TOYS))
def test_engine_matches_exact_cubical_barcode(name):
    c = compare_engine_to_exact(name, n_starts=32, resolution=401)
    assert len(c.engine_bars) == len(c.exact_bars), c.report()  # none missing, none spurious
    assert c.bottleneck <= TOLERANCE * c.value_range, c.report()
    assert c.landscape.barcode.n_essential == 1
    np.testing.assert_array_equal(c.landscape.barcode.births, np.sort(c.landscape.minima.values))


@pytest.mark.parametrize("name", ["camel", "rastrigin", "wells"])
def test_mst_pairs_give_the_all_pairs_barcode_with_fewer_paths(name):
    full = compare_engine_to_exact(name, resolution=201)
    mst = compare_engine_to_exact(name, resolution=201, pairs="mst")
    k = len(full.landscape.minima)
    assert len(mst.landscape.paths) < k * (k - 1) // 2
    a, b = full.landscape.barcode, mst.landscape.barcode
    np.testing.assert_allclose(a.births, b.births, atol=1e-9)
    vr = full.value_range
    np.testing.assert_allclose(a.deaths, b.deaths, atol=SIGNIFICANT * vr)


def test_barcode_of_plain_function_of_2d_points():
    """The example from the README: a tilted ring with a ripple, three minima."""

    def f(x):
        return (
            ((x**2).sum(1) - 1) ** 2
            + 0.3 * x[:, 0]
            + 0.1 * torch.sin(3 * torch.atan2(x[:, 1], x[:, 0]))
        )

    g = torch.Generator().manual_seed(0)
    starts = (torch.rand(16, 2, generator=g, dtype=torch.float64) - 0.5) * 3
    bars = barcode_of(f, starts)
    assert len(bars) == 3 and bars.n_essential == 1
    # Every finite bar dies at a saddle on the ring: above its birth, below the hilltop f(0)=1.
    fin = np.isfinite(bars.deaths)
    assert (bars.deaths[fin] > bars.births[fin]).all() and (bars.deaths[fin] < 1).all()
    assert bars.to_score("sum") == pytest.approx((bars.deaths[fin] - bars.births[fin]).sum())


def test_landscape_options_are_validated():
    f = TOYS["ring"].fn
    starts = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="unknown minima option"):
        landscape_of(f, starts, minima={"learning_rate": 1})
    with pytest.raises(ValueError, match="pairs"):
        landscape_of(f, starts, pairs="some")


def test_bottleneck_and_uncertified_pairs_by_hand():
    #   0 --1.0-- 1 --3.0-- 2        no edge 0-2: route 0-1-2 has height 3.0
    inf = np.inf
    s = np.array([[0.0, 1.0, inf], [1.0, 0.5, 3.0], [inf, 3.0, 0.2]])
    b = bottleneck(s)
    assert b[0, 2] == 3.0 and b[2, 0] == 3.0 and b[0, 1] == 1.0
    # Pair 0-2 could still have a saddle as low as max(0.0, 0.2) < 3.0: uncertified.
    assert uncertified_pairs(np.array([0.0, 0.5, 0.2]), s, 1e-9) == 1
    assert all_pairs(3).tolist() == [[0, 1], [0, 2], [1, 2]]


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_mst_pairs_give_the_all_pairs_barcode_on_a_small_network():
    from core.data import load_dataset
    from core.models import build_model
    from core.objective import NetworkObjective

    data = load_dataset("digits", n_train=120, n_test=30)
    model = build_model("mlp", 4, 1, data.input_shape, data.n_classes)
    obj = NetworkObjective(model, data, l2=1e-3, batch_size=None)
    options = dict(
        minima={"optimizer": "adam", "lr": 0.05, "lr_final": 1e-3, "max_steps": 1200,
                "grad_tol": 1e-4},
        paths={"steps": 2000, "lr": 0.1, "density": 2},
    )  # fmt: skip
    full = landscape_of(obj, obj.init(6, seed=0), pairs="all", **options)
    mst = landscape_of(obj, obj.init(6, seed=0), pairs="mst", **options)
    k = len(full.minima)
    assert k >= 4 and len(mst.paths) < k * (k - 1) // 2
    a, b = full.barcode, mst.barcode
    np.testing.assert_allclose(a.births, b.births, rtol=1e-6)
    scale = float(np.ptp(full.paths.straight))
    np.testing.assert_allclose(a.deaths, b.deaths, atol=SIGNIFICANT * scale)
