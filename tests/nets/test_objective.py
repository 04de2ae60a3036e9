"""The batched network objective (core/nets/objective.py) against plain nn.Module loops."""

import glob
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

import core.nets.objective as objective_module
from core.engine.evaluate import autograd_values_and_grads, values_and_grads, values_of
from core.nets.device import AUTO_STRATEGY, STRATEGIES, cpu_block_bytes, device_kind
from core.nets.models import FUSED_ARCHITECTURES, build_model, n_params, unflatten
from core.nets.objective import ACTIVATION_FACTOR, NetworkObjective

FUSED = FUSED_ARCHITECTURES  # resnet9: test_resnet9.py; charlm: test_text.py
L2 = 1e-2


pytestmark = pytest.mark.usefixtures("one_thread")


def digits(n_train: int = 48, n_test: int = 20) -> SimpleNamespace:
    """A Dataset-like namespace: the first sklearn digits, (B, 1, 8, 8) in [0, 1]."""
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32).view(-1, 1, 8, 8) / 16
    y = torch.tensor(y, dtype=torch.int64)
    n = n_train + n_test
    return SimpleNamespace(
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_test=x[n_train:n],
        y_test=y[n_train:n],
        n_classes=10,
        input_shape=(1, 8, 8),
    )


def sequences(n_train: int = 30) -> SimpleNamespace:
    """mnist1d-like (B, 1, 40) sequences with 10 classes."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n_train + 10, 1, 40, generator=g), torch.arange(n_train + 10) % 10
    return SimpleNamespace(
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_test=x[n_train:],
        y_test=y[n_train:],
        n_classes=10,
        input_shape=(1, 40),
    )


DATA = digits()


def reference(model, thetas, x, y, l2=L2):
    """The oracle: load each theta into the plain module, CE + l2 * ||theta||^2 / 2 by hand."""
    values, grads = [], []
    for theta in thetas:
        model.load_state_dict(unflatten(theta.detach(), model))
        model.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss = loss + 0.5 * l2 * sum(p.pow(2).sum() for p in model.parameters())
        loss.backward()
        values.append(loss.detach())
        grads.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]))
    return torch.stack(values), torch.stack(grads)


def value_and_grad(objective, thetas):
    thetas = thetas.clone().requires_grad_(True)
    values = objective(thetas)
    (grad,) = torch.autograd.grad(values.sum(), thetas)
    return values.detach(), grad


def assert_grads_close(actual, expected):
    scale = expected.abs().max()
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("arch", FUSED)
def test_every_strategy_equals_the_plain_module_loop(arch, strategy):
    model = build_model(arch, 6, 2, (1, 8, 8), 10)
    obj = NetworkObjective(model, DATA, l2=L2, strategy=strategy)
    thetas = obj.init(3, seed=0)
    values, grads = value_and_grad(obj, thetas)
    ref_values, ref_grads = reference(model, thetas, DATA.x_train, DATA.y_train)
    assert values.shape == (3,) and grads.shape == (3, n_params(model))
    torch.testing.assert_close(values, ref_values, rtol=1e-5, atol=0)
    assert_grads_close(grads, ref_grads)


@pytest.mark.parametrize("arch", ["cnn", "resnet", "transformer"])
def test_fused_equals_the_loop_on_sequences(arch):
    data = sequences()
    model = build_model(arch, 4, 2, (1, 40), 10)
    obj = NetworkObjective(model, data, l2=L2, strategy="fused")
    thetas = obj.init(2, seed=1)
    values, grads = value_and_grad(obj, thetas)
    ref_values, ref_grads = reference(model, thetas, data.x_train, data.y_train)
    torch.testing.assert_close(values, ref_values, rtol=1e-5, atol=0)
    assert_grads_close(grads, ref_grads)


def test_auto_takes_the_benchmarked_table_and_loop_for_foreign_modules():
    assert device_kind(torch.device("cpu")) == "cpu1"  # the one_thread fixture
    for arch in FUSED:
        obj = NetworkObjective(build_model(arch, 4, 1, (1, 8, 8), 10), DATA)
        assert obj.strategy == AUTO_STRATEGY["cpu1"][arch]
    torch.set_num_threads(2)
    try:
        assert device_kind(torch.device("cpu")) == "cpu"
        obj = NetworkObjective(build_model("cnn", 4, 1, (1, 8, 8), 10), DATA)
        assert obj.strategy == AUTO_STRATEGY["cpu"]["cnn"]
    finally:
        torch.set_num_threads(1)
    foreign = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    assert NetworkObjective(foreign, DATA).strategy == "loop"
    with pytest.raises(ValueError, match="strategy 'fused' needs a model with forward_many"):
        NetworkObjective(foreign, DATA, strategy="fused")
    with pytest.raises(ValueError, match="strategy must be one of .*'jit'"):
        NetworkObjective(foreign, DATA, strategy="jit")


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_blocks_and_checkpointing_equal_one_block(arch):
    model = build_model(arch, 6, 1, (1, 8, 8), 10)
    whole = NetworkObjective(model, DATA, l2=L2)
    thetas = whole.init(5, seed=2)
    values, grads = value_and_grad(whole, thetas)
    assert whole._blocks(5, DATA.x_train.shape[0]) == (5, DATA.x_train.shape[0])
    assert whole._hand_grad(2) == (arch == "mlp")  # MLP blocks: hand-written gradient
    by_points = NetworkObjective(model, DATA, l2=L2, max_points=2)  # blocks of 2, 2, 1 vectors
    # a budget of about 7 examples for 2 networks: blocks over the data as well
    tiny = 2 * 7 * ACTIVATION_FACTOR * whole.bytes_per_example
    by_data = NetworkObjective(model, DATA, l2=L2, max_points=2, memory_budget=tiny)
    assert by_data._blocks(5, 48) == (2, 7)
    for obj in (by_points, by_data):
        v, g = value_and_grad(obj, thetas)
        torch.testing.assert_close(v, values, rtol=1e-6, atol=0)
        assert_grads_close(g, grads)
        ev, ev_whole = obj.evaluate(thetas, "test"), whole.evaluate(thetas, "test")
        np.testing.assert_allclose(ev["loss"], ev_whole["loss"], rtol=1e-6)
        np.testing.assert_array_equal(ev["accuracy"], ev_whole["accuracy"])


@pytest.mark.parametrize("depth", [1, 3])
def test_direct_values_and_grads_equal_autograd_of_the_loss(depth, monkeypatch):
    """The MLP's values_and_grads (hand-written gradient, no autograd around it) does the
    arithmetic that autograd of the same loss does: the same numbers to the bit in float32 and
    float64 (whole train set, minibatches, blocks of vectors), within 1e-12 where the examples
    come in blocks too (autograd sums those in its own order). Other architectures fall back
    to autograd; the compiled twin keeps the hand-written gradient, eager."""
    model = build_model("mlp", 5, depth, (1, 8, 8), 10)
    whole = NetworkObjective(model, DATA, l2=L2, strategy="fused", batch_size=16)
    by_vectors = NetworkObjective(model, DATA, l2=L2, max_points=2)
    tiny = 2 * 7 * ACTIVATION_FACTOR * whole.bytes_per_example  # blocks of (2, 7)
    by_data = NetworkObjective(model, DATA, l2=L2, max_points=2, memory_budget=tiny)
    cases = {"whole": whole, "by_vectors": by_vectors, "by_data": by_data}
    cases["minibatch"] = whole.minibatch(2)
    expected = {}
    for dtype in (torch.float32, torch.float64):
        thetas = whole.init(5, seed=3).to(dtype)
        for name, f in cases.items():
            expected[name, dtype] = autograd_values_and_grads(f, thetas)  # via _HandGradCE
    calls = []
    monkeypatch.setattr(
        objective_module,
        "autograd_values_and_grads",
        lambda *a: calls.append(a) or autograd_values_and_grads(*a),
    )
    for dtype in (torch.float32, torch.float64):
        thetas = whole.init(5, seed=3).to(dtype)
        for name, f in cases.items():
            v, g = f.values_and_grads(thetas)
            assert v.dtype == g.dtype == dtype and not (v.requires_grad or g.requires_grad)
            ev, eg = expected[name, dtype]
            if name == "by_data":
                tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else {}
                torch.testing.assert_close(v, ev, **tol)
                torch.testing.assert_close(g, eg, **tol)
            else:
                assert torch.equal(v, ev) and torch.equal(g, eg), name
    # autograd only for the last block of one network that auto gives the loop (5 = 2 + 2 + 1)
    assert [len(a[1]) for a in calls] == [1, 1, 1, 1]
    calls.clear()
    thetas = whole.init(5, seed=3)
    v, g = values_and_grads(whole, thetas, chunk=2)  # core.engine.evaluate: per chunk
    assert torch.equal(v, expected["whole", torch.float32][0])
    assert torch.equal(g, expected["whole", torch.float32][1])
    assert calls == []
    cnn = NetworkObjective(build_model("cnn", 4, 1, (1, 8, 8), 10), DATA, l2=L2)
    v, g = cnn.values_and_grads(cnn.init(2, seed=0))
    assert len(calls) == 1 and g.shape == (2, cnn.n_params)  # no hand gradient: autograd
    v, g = whole.compiled().values_and_grads(thetas)  # compiled: the hand gradient is eager
    assert len(calls) == 1 and torch.equal(g, expected["whole", torch.float32][1])


def test_values_and_grads_uses_the_objectives_own_per_chunk():
    """core.engine.evaluate.values_and_grads calls objective.values_and_grads per chunk where the
    objective has one, and checks its output like any objective's."""

    class Direct:
        def __init__(self, shape_bug=False):
            self.chunks, self.shape_bug = [], shape_bug

        def __call__(self, thetas):
            raise AssertionError("values_and_grads must not be asked through __call__")

        def values_and_grads(self, thetas):
            self.chunks.append(thetas.shape[0])
            v = thetas.pow(2).sum(1)
            return (v[:-1] if self.shape_bug else v), 2 * thetas

    thetas = torch.arange(12.0).view(6, 2)
    f = Direct()
    v, g = values_and_grads(f, thetas, chunk=4)
    assert f.chunks == [3, 3]  # at most 4 per call, and no small last call
    torch.testing.assert_close(v, thetas.pow(2).sum(1))
    torch.testing.assert_close(g, 2 * thetas)
    with pytest.raises(ValueError, match=r"got output shape \(2,\) for M=3"):
        values_and_grads(Direct(shape_bug=True), thetas, chunk=4)


def test_chunks_follow_the_objectives_hints():
    """Evaluations without gradients take ``value_block_size``, with gradients
    ``block_size``; chunks are of even sizes. The MLP 8x1's value blocks count its logits."""

    class Hinted:
        def __init__(self):
            self.calls = []

        def __call__(self, thetas):
            self.calls.append(len(thetas))
            return thetas.pow(2).sum(1)

        block_size = staticmethod(lambda m: 4)
        value_block_size = staticmethod(lambda m: 3)

    f, thetas = Hinted(), torch.arange(20.0).view(10, 2)
    values_of(f, thetas)
    assert f.calls == [2, 3, 2, 3]
    f.calls.clear()
    values_and_grads(f, thetas)
    assert f.calls == [3, 3, 4]
    model = build_model("mlp", 8, 1, (1, 8, 8), 10)
    obj = NetworkObjective(model, digits(300, 20), l2=L2)
    assert obj.bytes_per_example == 64  # the hidden layer's output, saved twice
    assert obj.value_bytes_per_example == 3 * 10 * 4  # logits and two of their size
    assert obj.value_block_size(10**6) < obj.block_size(10**6)


def test_hand_written_gradient_refuses_second_derivatives():
    """The fused MLP's gradient is computed by hand without a graph: create_graph=True must
    fail loudly rather than return a Hessian without the network's part."""
    obj = NetworkObjective(build_model("mlp", 4, 1, (1, 8, 8), 10), DATA, strategy="fused")
    thetas = obj.init(3, seed=0).requires_grad_()
    with pytest.raises(RuntimeError, match="no second derivatives"):
        torch.autograd.grad(obj(thetas).sum(), thetas, create_graph=True)
    loop = NetworkObjective(build_model("mlp", 4, 1, (1, 8, 8), 10), DATA, strategy="loop")
    (g,) = torch.autograd.grad(loop(thetas).sum(), thetas, create_graph=True)
    assert g.requires_grad  # the loop keeps its graph


def test_minibatches_are_deterministic_and_cover_each_epoch():
    model = build_model("mlp", 4, 1, (1, 8, 8), 10)
    obj = NetworkObjective(model, DATA, batch_size=20, seed=5)  # 48 examples: 20, 20, 8
    assert obj.steps_per_epoch == 3
    epoch0 = [obj.batch_indices(s) for s in range(3)]
    assert [len(i) for i in epoch0] == [20, 20, 8]
    assert sorted(torch.cat(epoch0).tolist()) == list(range(48))
    epoch1 = torch.cat([obj.batch_indices(s) for s in range(3, 6)])
    assert sorted(epoch1.tolist()) == list(range(48))
    assert not torch.equal(epoch1, torch.cat(epoch0))  # a new permutation each epoch
    again = NetworkObjective(model, DATA, batch_size=20, seed=5)
    assert torch.equal(again.batch_indices(4), obj.batch_indices(4))  # any order of calls
    assert not torch.equal(
        NetworkObjective(model, DATA, batch_size=20, seed=6).batch_indices(0), epoch0[0]
    )
    # the minibatch objective is the loss on exactly those examples, + the l2 term
    thetas = obj.init(2, seed=0)
    idx = obj.batch_indices(1)
    ref, _ = reference(model, thetas, DATA.x_train[idx], DATA.y_train[idx], l2=1e-4)
    torch.testing.assert_close(obj.minibatch(1)(thetas), ref, rtol=1e-5, atol=0)
    full = NetworkObjective(model, DATA, batch_size=None)
    torch.testing.assert_close(full.minibatch(7)(thetas), full(thetas))
    with pytest.raises(ValueError, match="step must be an int >= 0, got -1"):
        obj.minibatch(-1)


@pytest.mark.parametrize("split", ["train", "test"])
def test_evaluate_matches_a_hand_computation(split):
    model = build_model("cnn", 6, 1, (1, 8, 8), 10)
    obj = NetworkObjective(model, DATA, l2=L2)
    thetas = obj.init(3, seed=4)
    x, y = (DATA.x_train, DATA.y_train) if split == "train" else (DATA.x_test, DATA.y_test)
    out = obj.evaluate(thetas, split)
    for m, theta in enumerate(thetas):
        model.load_state_dict(unflatten(theta, model))
        with torch.no_grad():
            logits = model(x)
        accuracy = (logits.argmax(1) == y).double().mean().item()
        assert out["accuracy"][m] == pytest.approx(accuracy, abs=1e-12)
        assert out["error"][m] == pytest.approx(1 - accuracy, abs=1e-12)
        assert out["loss"][m] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
        assert out["l2"][m] == pytest.approx(0.5 * L2 * theta.double().pow(2).sum().item())
    # the objective is the train loss plus the l2 term
    if split == "train":
        np.testing.assert_allclose(obj(thetas).numpy(), out["loss"] + out["l2"], rtol=1e-5)
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        obj.evaluate(thetas, "val")


def test_rows_are_independent():
    # changing one network leaves the values of the others untouched (no cross-model reduction)
    obj = NetworkObjective(build_model("resnet", 4, 1, (1, 8, 8), 10), DATA, strategy="fused")
    thetas = obj.init(3, seed=0)
    other = thetas.clone()
    other[1] *= 3
    a, b = obj(thetas), obj(other)
    assert torch.equal(a[[0, 2]], b[[0, 2]]) and a[1] != b[1]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"l2": -1.0}, "l2 must be a finite number >= 0, got -1.0"),
        ({"batch_size": 0}, "batch_size must be a positive int or None, got 0"),
        ({"max_points": 1.5}, "max_points must be a positive int or None, got 1.5"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NetworkObjective(build_model("mlp", 4, 1, (1, 8, 8), 10), DATA, **kwargs)


def test_bad_thetas_raise_value_error():
    obj = NetworkObjective(build_model("mlp", 4, 1, (1, 8, 8), 10), DATA)
    with pytest.raises(ValueError, match=rf"thetas must be \(M, {obj.n_params}\), got \(2, 3\)"):
        obj(torch.zeros(2, 3))


def test_block_size_fits_the_cpu_cache_and_the_engine_uses_it(monkeypatch):
    model = build_model("mlp", 6, 1, (1, 8, 8), 10)
    obj = NetworkObjective(model, DATA, l2=L2, batch_size=16)
    per_vector = ACTIVATION_FACTOR * obj.bytes_per_example * DATA.x_train.shape[0]
    monkeypatch.setattr(objective_module, "MIN_BLOCK_ROWS", 1)  # the cache alone decides
    monkeypatch.setattr(obj, "_speed_budget", 3 * per_vector)  # room for 3 vectors
    assert obj.block_size(10) == 3
    assert obj.block_size(2) == 2  # never more than asked for
    assert obj.minibatch(0).block_size(10) == 9  # 16 of the 48 examples: 3x as many vectors
    monkeypatch.setattr(obj, "_speed_budget", 1)  # nothing fits: one vector per block
    assert obj.block_size(10) == 1
    monkeypatch.setattr(objective_module, "MIN_BLOCK_ROWS", 5 * 48)  # ... unless too small
    assert obj.block_size(10) == 5
    monkeypatch.setattr(obj, "memory_budget", 2 * per_vector)  # and the memory budget rules
    assert obj.block_size(10) == 2
    monkeypatch.setattr(obj, "memory_budget", 10**12)
    monkeypatch.setattr(objective_module, "MIN_BLOCK_ROWS", 1)
    # values_and_grads calls the objective in block_size chunks, and the result is the same
    calls = []
    monkeypatch.setattr(obj, "_speed_budget", 3 * per_vector)
    counted = obj._values_and_grads

    def spy(thetas, x, y):
        calls.append(thetas.shape[0])
        return counted(thetas, x, y)

    monkeypatch.setattr(obj, "_values_and_grads", spy)
    thetas = obj.init(8, seed=1)
    v, g = values_and_grads(obj, thetas)
    assert calls == [2, 3, 3]  # at most 3, of even sizes
    v1, g1 = values_and_grads(obj, thetas, chunk=8)
    torch.testing.assert_close(v, v1, rtol=1e-6, atol=0)
    assert_grads_close(g, g1)


def test_cpu_block_bytes_is_half_the_largest_cache():
    caches = sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*/size"))
    if not caches:
        assert cpu_block_bytes() == 16 << 20
        return
    sizes = []
    for f in caches:
        text = open(f).read().strip()
        sizes.append(int(text[:-1]) * {"K": 1024, "M": 1024**2}[text[-1]])
    assert cpu_block_bytes() == max(sizes) // 2


MEMORY_PROBE = """
import resource, sys, torch
from core.runs.config import RunConfig
from core.engine.evaluate import autograd_values_and_grads, values_and_grads, values_of
from core.runs.pipeline import objectives
torch.set_num_threads(1)
config = RunConfig(memory_mb={budget}).replace(model={{"width": 32, "depth": 2}})
objective, _ = objectives(config, torch.device("cpu"))
thetas = objective.init({m}, seed=0)
def rss():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) * 1024
values_and_grads(objective, thetas[: objective.block_size({m})])  # warm-up: one block
before = rss()  # after the libraries' one-time buffers, which no budget governs
values, grads = values_and_grads(objective, thetas)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(before, peak, objective.bytes_per_example, objective.n_train)
"""


@pytest.mark.slow
def test_peak_memory_stays_under_the_budget_whatever_the_number_of_points():
    """4000 MLP vectors on the full digits train set would need ~5.9 GB of activations in
    one block; with a 64 MiB budget the process grows by the inputs, the gradients and at
    most a few budgets."""
    import subprocess
    import sys

    budget, m = 64, 4000
    code = MEMORY_PROBE.format(budget=budget, m=m)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout
    before, peak, per_example, n = (int(v) for v in out.split())
    one_block = ACTIVATION_FACTOR * per_example * n * m
    assert one_block > 50 * (budget << 20)  # the test would notice one block
    io = 3 * m * 3466 * 4  # thetas, a chunk-sized copy, the gradients (float32)
    # allocator arenas and library buffers: 150 MiB alone, up to 480 MiB inside the full suite
    slack = 512 << 20
    bound = io + 4 * (budget << 20) + slack
    assert one_block > 5 * bound  # still far below what one block would take
    assert peak - before < bound, (peak - before) / 2**20


@pytest.mark.slow
def test_compiled_objective_equals_eager():
    """What compiled() compiles: the loss through the logits (vmap here; the fused MLP's
    hand-written gradient stays eager)."""
    model = build_model("mlp", 6, 1, (1, 8, 8), 10)
    obj = NetworkObjective(model, DATA, l2=L2, batch_size=16, strategy="vmap")
    twin = obj.compiled()
    thetas = obj.init(5, seed=3)
    for f, g in ((obj, twin), (obj.minibatch(2), twin.minibatch(2))):
        v, dv = values_and_grads(f, thetas)
        w, dw = values_and_grads(g, thetas)
        torch.testing.assert_close(w, v, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(dw, dv, rtol=1e-4, atol=1e-6)
