"""The engine on CUDA against the CPU and exact answers (marked gpu; skipped without CUDA).

CI has no GPU: these run on a lent GPU machine (BENCHMARKS.md, GPU check) with
``python -m pytest -m gpu``.
"""

import numpy as np
import pytest
import torch
from conftest import adam_minima

from core.engine.evaluate import autograd_values_and_grads, values_and_grads
from core.engine.paths import PathOptions, connect
from core.engine.saddles import path_profile
from core.engine.validate import TOLERANCE, compare_engine_to_exact
from core.nets.data import load_dataset
from core.nets.device import STRATEGIES
from core.nets.models import FUSED_ARCHITECTURES, build_model
from core.nets.objective import NetworkObjective

FUSED = FUSED_ARCHITECTURES  # resnet9: test_resnet9.py; charlm: test_text.py

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", n_train=64, n_test=32)


@pytest.mark.parametrize("arch", FUSED)
def test_every_strategy_on_cuda_equals_the_cpu_loop_in_float64(arch, digits):
    """Values and gradients on the GPU equal the CPU's per-model loop (float64: no TF32)."""
    model = build_model(arch, 6, 2, digits.input_shape, digits.n_classes)
    cpu = NetworkObjective(model, digits, l2=1e-3, strategy="loop")
    thetas = cpu.init(4, seed=0).double()
    ref_v, ref_g = values_and_grads(cpu, thetas)
    for strategy in STRATEGIES:
        gpu = NetworkObjective(model, digits, l2=1e-3, strategy=strategy, device="cuda")
        v, g = values_and_grads(gpu, thetas.to(CUDA))
        assert v.is_cuda and g.is_cuda
        torch.testing.assert_close(v.cpu(), ref_v, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(g.cpu(), ref_g, rtol=1e-9, atol=1e-11)


def test_hand_written_gradient_on_cuda_equals_autograd(digits):
    model = build_model("mlp", 16, 2, digits.input_shape, digits.n_classes)
    obj = NetworkObjective(model, digits, l2=1e-3, strategy="fused", device="cuda")
    for f in (obj, obj.minibatch(16)):
        thetas = obj.init(5, seed=1).double()
        v, g = f.values_and_grads(thetas)
        ev, eg = autograd_values_and_grads(f, thetas)
        torch.testing.assert_close(v, ev, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(g, eg, rtol=1e-12, atol=1e-12)


def test_peak_memory_stays_under_the_budget(digits):
    """The memory budget bounds the activations of a block whatever the number of vectors:
    the peak above what was allocated before, less the (M, P) gradients returned, stays
    under the budget for 16 and for 256 vectors."""
    model = build_model("cnn", 16, 2, digits.input_shape, digits.n_classes)
    budget = 8 << 20
    obj = NetworkObjective(model, digits, l2=1e-3, device="cuda", memory_budget=budget)
    for m in (16, 256):
        thetas = obj.init(m, seed=0)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        v, g = values_and_grads(obj, thetas)
        torch.cuda.synchronize()
        extra = torch.cuda.max_memory_allocated() - before - 2 * g.numel() * g.element_size()
        assert extra <= budget, f"{m} vectors: {extra / 2**20:.1f} MiB over a budget of 8 MiB"
        del v, g


@pytest.mark.parametrize("name", ["camel", "wells"])
def test_engine_on_cuda_matches_the_exact_barcode(name):
    c = compare_engine_to_exact(name, n_starts=24, resolution=401, device="cuda")
    assert c.landscape.minima.thetas.is_cuda
    assert len(c.engine_bars) == len(c.exact_bars), c.report()
    assert c.bottleneck <= TOLERANCE * c.value_range, c.report()


def test_bfloat16_and_compiled_steps_on_cuda_keep_float32_saddles(digits):
    """Path steps in bfloat16 and through torch.compile: the reported saddles are float32
    evaluations of the stored paths and agree with the float32 run within 5% of the barrier."""
    model = build_model("mlp", 8, 1, digits.input_shape, digits.n_classes)
    obj = NetworkObjective(model, digits, l2=1e-3, batch_size=32, seed=0, device="cuda")
    ends = adam_minima(obj)
    pairs = np.array([[0, 1], [0, 2], [1, 2]])
    runs = {}
    for name, precision, src in (
        ("float32", "float32", obj),
        ("bfloat16", "bfloat16", obj),
        ("compiled", "float32", obj.compiled()),
    ):
        # half the steps on the (compiled or bfloat16) minibatches, then full-data steps
        opts = PathOptions(steps=300, noisy_steps=150, check_density=2, precision=precision)
        runs[name] = connect(obj, ends, pairs, opts, step_objective=src.minibatch)
    low = obj(ends).detach().double().cpu().numpy()
    fp = runs["float32"]
    for name in ("bfloat16", "compiled"):
        p = runs[name]
        for e, (i, j) in enumerate(pairs):
            _, vals = path_profile(obj, p.points[e], int(p.densities[e]))
            assert vals.max() == pytest.approx(p.saddles[e], rel=1e-6), name
            barrier = fp.saddles[e] - max(low[i], low[j])
            if fp.status[e] == p.status[e] == "converged":  # else one of them says it is not
                assert abs(p.saddles[e] - fp.saddles[e]) <= 0.05 * barrier, (name, p.saddles)
            else:
                assert "step cap" in (fp.status[e], p.status[e]) or barrier <= opts.saddle_tol
