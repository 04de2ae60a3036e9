"""Weight matching (core/nets/align.py) and the permutation groups it searches
(core/nets/permutations.py): the function is kept, an explicit permutation is undone to the
bit, and the straight barrier between a minimum and its permuted copy vanishes."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from core.nets.align import (
    SIGN,
    align_minima,
    apply_permutation,
    permute_tensors,
    random_permutations,
    straight_barriers,
    weight_matching,
)
from core.nets.data import load_dataset
from core.nets.models import build_model, init_thetas, unflatten
from core.nets.norm import Forward
from core.nets.objective import NetworkObjective
from core.nets.permutations import SUPPORTED, permutation_spec

pytestmark = pytest.mark.usefixtures("one_thread")

# tiny networks of every supported architecture: (width, depth, input shape, classes)
TINY = {
    "mlp": (6, 2, (1, 8, 8), 5),
    "cnn": (4, 2, (1, 8, 8), 5),
    "resnet": (4, 2, (1, 8, 8), 5),
    "resnet9": (2, 1, (3, 8, 8), 5),
    "transformer": (6, 2, (1, 8, 8), 5),
    "charlm": (4, 2, (6,), 7),
}


def _model_and_inputs(arch: str):
    width, depth, shape, classes = TINY[arch]
    model = build_model(arch, width, depth, shape, classes).eval()
    gen = torch.Generator().manual_seed(1)
    if arch == "charlm":
        return model, torch.randint(0, classes, (5, *shape), generator=gen)
    return model, torch.randn(16, *shape, generator=gen)


def _logits(model, theta, x, batchnorm="batch"):
    """(B, C) logits of ``model`` at ``theta``; BatchNorm as in a run (core.nets.norm)."""
    if _has_batchnorm(model):
        return Forward(model, batchnorm, x)(unflatten(theta, model), x)
    return functional_call(model, unflatten(theta, model), (x,))


def _has_batchnorm(model) -> bool:
    return any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_every_built_in_architecture_is_covered():
    assert set(SUPPORTED) == set(TINY)


@pytest.mark.parametrize("arch", SUPPORTED)
def test_permuted_and_aligned_networks_compute_the_same_function(arch):
    model, x = _model_and_inputs(arch)
    spec = permutation_spec(model)
    thetas = init_thetas(model, 3, seed=2)  # (K, P)
    aligned = align_minima(model, thetas)  # onto row 0
    assert torch.equal(aligned[0], thetas[0])
    for k, (theta, new) in enumerate(zip(thetas, aligned, strict=True)):
        shuffled = apply_permutation(spec, theta, random_permutations(spec, seed=k))
        assert not torch.equal(shuffled, theta)  # the units did move
        for moved in (new, shuffled):
            for mode in ("batch", "recomputed") if arch == "resnet9" else ("batch",):
                want = _logits(model, theta, x, mode)
                torch.testing.assert_close(_logits(model, moved, x, mode), want)
    # weight matching only ever moves a network closer to the reference (from identity)
    before, after = (thetas - thetas[0]).norm(dim=1), (aligned - thetas[0]).norm(dim=1)
    assert (after <= before * (1 + 1e-6)).all() and (after[1:] < before[1:]).all()


@pytest.mark.parametrize("arch", ["mlp", "cnn", "resnet"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_explicit_permutation_is_undone_to_the_bit(arch, seed):
    model, _ = _model_and_inputs(arch)
    spec = permutation_spec(model)
    a = init_thetas(model, 1, seed=seed)[0]
    perms = random_permutations(spec, seed=10 + seed)
    b = apply_permutation(spec, a, perms)  # unit i of b is unit perms[p][i] of a
    found = weight_matching(spec, a, b)
    for p, perm in perms.items():  # the inverse: unit i of the result is unit i of a
        assert torch.equal(found[p], torch.argsort(perm)), p
    assert torch.equal(apply_permutation(spec, b, found), a)
    assert torch.equal(align_minima(model, torch.stack([a, b]))[1], a)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_tanh_network_is_matched_modulo_signed_permutations(seed):
    """tanh is odd: negating a hidden unit (its row, bias and the columns that read it) keeps
    the function, and weight matching undoes a random signed permutation to the bit."""
    width, depth, shape, classes = TINY["mlp"]
    model = build_model("mlp", width, depth, shape, classes, "tanh")
    x = torch.randn(16, *shape, generator=torch.Generator().manual_seed(seed))
    spec = permutation_spec(model)
    assert spec.signed == ("hidden.0", "hidden.1")
    a = init_thetas(model, 1, seed=seed)[0]
    perms = random_permutations(spec, seed=10 + seed)
    assert (perms[SIGN + "hidden.0"] == -1).any() and (perms[SIGN + "hidden.1"] == -1).any()
    b = apply_permutation(spec, a, perms)
    torch.testing.assert_close(_logits(model, b, x), _logits(model, a, x))
    unsigned = apply_permutation(spec, a, {p: v for p, v in perms.items() if p in spec.sizes})
    assert not torch.equal(b, unsigned)  # the signs negated some units
    found = weight_matching(spec, a, b)
    assert torch.equal(apply_permutation(spec, b, found), a)
    assert torch.equal(align_minima(model, torch.stack([a, b]))[1], a)
    relu = permutation_spec(build_model("mlp", width, depth, shape, classes))
    assert relu.signed == () and SIGN + "hidden.0" not in random_permutations(relu, seed)
    # a sign flip is no symmetry of a ReLU network: it changes the function
    flipped = apply_permutation(
        spec,
        a,
        {p: torch.arange(width) for p in spec.sizes}
        | {
            SIGN + "hidden.0": torch.tensor([-1] + [1] * (width - 1)),
        },
    )
    relu_model = build_model("mlp", width, depth, shape, classes)
    assert not torch.allclose(_logits(relu_model, flipped, x), _logits(relu_model, a, x))


def test_straight_barrier_between_a_minimum_and_its_permuted_copy_vanishes_after_alignment():
    data = load_dataset("digits", n_train=120, n_test=30, seed=0)
    model = build_model("mlp", 8, 2, data.input_shape, data.n_classes)
    objective = NetworkObjective(model, data, batch_size=None)
    a = init_thetas(model, 1, seed=3)[0].requires_grad_()
    opt = torch.optim.Adam([a], lr=0.01)
    for _ in range(300):  # a rough minimum: a barrier to its permuted copy shows
        opt.zero_grad()
        objective(a[None]).sum().backward()
        opt.step()
    a = a.detach()
    spec = permutation_spec(model)
    b = apply_permutation(spec, a, random_permutations(spec, seed=4))
    pair = torch.stack([a, b])
    torch.testing.assert_close(objective(pair)[1], objective(pair)[0])  # same loss
    before = straight_barriers(objective, pair, n=11)
    after = straight_barriers(objective, align_minima(model, pair), n=11)
    assert before[0] == 0.0 and before[1] > 0.1
    np.testing.assert_array_equal(after, [0.0, 0.0])  # every point of the segment is a


def test_align_minima_equals_a_loop_of_weight_matching():
    model, _ = _model_and_inputs("mlp")
    spec = permutation_spec(model)
    thetas = init_thetas(model, 4, seed=5)
    batched = align_minima(model, thetas, reference=2, seed=7)
    for k, theta in enumerate(thetas):
        perms = weight_matching(spec, thetas[2], theta, seed=7)
        assert torch.equal(batched[k], apply_permutation(spec, theta, perms))


def test_matching_a_network_to_itself_is_the_identity():
    model, _ = _model_and_inputs("transformer")
    spec = permutation_spec(model)
    a = init_thetas(model, 1, seed=0)[0]
    for p, perm in weight_matching(spec, a, a).items():
        assert torch.equal(perm, torch.arange(spec.sizes[p])), p


def test_batchnorm_running_statistics_move_with_their_channels():
    model, x = _model_and_inputs("resnet9")
    gen = torch.Generator().manual_seed(0)
    state = {n: t + torch.rand(t.shape, generator=gen) for n, t in model.state_dict().items()}
    state = {n: t.round() if n.endswith("num_batches_tracked") else t for n, t in state.items()}
    spec = permutation_spec(model)
    perms = random_permutations(spec, seed=1)
    moved = permute_tensors(spec, state, perms)
    # stage 0's channels: the running mean is reordered like the conv's output channels
    p = perms["stages.0"]
    assert torch.equal(moved["stages.0.bn.running_mean"], state["stages.0.bn.running_mean"][p])
    assert torch.equal(moved["stages.0.conv.weight"], state["stages.0.conv.weight"][p])
    want = functional_call(model, state, (x,))  # eval mode: the running statistics
    torch.testing.assert_close(functional_call(model, moved, (x,)), want)


def test_straight_barriers_of_a_double_well_by_hand():
    #   f(x, y) = (x^2 - 1)^2 + y^2, minima at (-1, 0) and (1, 0), f = 0; the segment between
    #   them passes (0, 0) where f = 1; n = 5 samples x = -1, -0.5, 0, 0.5, 1.
    def f(th):
        return (th[:, 0] ** 2 - 1) ** 2 + th[:, 1] ** 2

    thetas = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    # to (-1, 1): f = y^2 rises monotonically to the far end, so no barrier
    np.testing.assert_array_equal(straight_barriers(f, thetas, reference=0, n=5), [0, 1, 0])


def test_unsupported_modules_and_bad_inputs_raise_value_errors():
    with pytest.raises(ValueError, match=r"'Sequential'.*supports.*'mlp'"):
        permutation_spec(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match="Sequential"):
        align_minima(nn.Sequential(nn.Linear(3, 4)), torch.zeros(2, 16))
    model, _ = _model_and_inputs("mlp")
    spec = permutation_spec(model)
    with pytest.raises(ValueError, match="theta must be"):
        weight_matching(spec, torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="reference"):
        align_minima(model, init_thetas(model, 2, seed=0), reference=2)
