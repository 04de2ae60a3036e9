"""Architectures and flat parameters (core/nets/models.py)."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from core.nets.models import (
    ACTIVATIONS,
    FUSED_ARCHITECTURES,
    build_model,
    flatten,
    init_thetas,
    n_params,
    unflatten,
)

FUSED = FUSED_ARCHITECTURES  # resnet9: test_resnet9.py; charlm: test_text.py

SHAPES = {"digits": (1, 8, 8), "mnist1d": (1, 40), "cifar": (3, 32, 32)}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("arch", FUSED)
def test_builds_and_maps_inputs_to_logits(arch, shape):
    model = build_model(arch, 8, 2, shape, 7)
    x = torch.randn(5, *shape, generator=torch.Generator().manual_seed(0))
    assert model(x).shape == (5, 7)
    assert n_params(model) == sum(p.numel() for p in model.parameters())
    assert not list(model.buffers())  # nothing that could carry state across models
    assert (model.arch, model.width, model.depth, model.input_shape) == (arch, 8, 2, shape)


def test_mlp_parameter_count_by_hand():
    # 64 -> 10 -> 10 -> 3: (64*10 + 10) + (10*10 + 10) + (10*3 + 3)
    assert n_params(build_model("mlp", 10, 2, (1, 8, 8), 3)) == 650 + 110 + 33


def test_cnn_pools_only_while_the_spatial_size_allows():
    # 8x8 -> 4 -> 2 -> 1 -> 1: the fourth block has nothing left to pool
    model = build_model("cnn", 4, 4, (1, 8, 8), 10)
    assert model.pools == (True, True, True, False)
    assert model.head.in_features == 4 * 1 * 1
    assert isinstance(build_model("cnn", 4, 1, (1, 40), 10).convs[0], torch.nn.Conv1d)


def test_resnet_stem_pools_large_inputs_down_to_8():
    assert build_model("resnet", 4, 1, (3, 32, 32), 10).stem_pools == 2  # 32 -> 16 -> 8
    assert build_model("resnet", 4, 1, (1, 8, 8), 10).stem_pools == 0


@pytest.mark.parametrize("width, heads", [(8, 2), (7, 1)])
def test_transformer_heads_divide_the_width(width, heads):
    model = build_model("transformer", width, 1, (1, 8, 8), 10)
    assert model.blocks[0].heads == heads
    assert model.pos.shape == (8, width)  # 8 image rows are the tokens


@pytest.mark.parametrize("arch", FUSED)
def test_flatten_unflatten_round_trip_is_exact(arch):
    model = build_model(arch, 6, 2, (1, 8, 8), 10)
    theta = flatten(model)
    assert theta.shape == (n_params(model),)
    params = unflatten(theta, model)
    for name, p in model.named_parameters():
        assert torch.equal(params[name], p)
        assert params[name].data_ptr() >= theta.data_ptr()  # a view, not a copy
    assert torch.equal(torch.cat([v.reshape(-1) for v in params.values()]), theta)
    # with a leading axis: (M, P) -> name -> (M, *shape)
    thetas = torch.stack([theta, 2 * theta])
    for name, p in model.named_parameters():
        assert torch.equal(unflatten(thetas, model)[name][1], 2 * p)


def test_unflatten_rejects_a_wrong_length():
    model = build_model("mlp", 4, 1, (1, 8, 8), 10)
    with pytest.raises(ValueError, match="theta must have"):
        unflatten(torch.zeros(n_params(model) + 1), model)


@pytest.mark.parametrize("arch", FUSED)
def test_forward_many_equals_one_network_at_a_time(arch):
    model = build_model(arch, 6, 2, (1, 8, 8), 10)
    thetas = init_thetas(model, 3, seed=1)
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    loop = torch.stack([functional_call(model, unflatten(t, model), (x,)) for t in thetas])
    torch.testing.assert_close(model.forward_many(unflatten(thetas, model), x), loop)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize(("depth", "scale"), [(1, 1.0), (2, 1.0), (3, 1.0), (2, 40.0)])
def test_mlp_hand_written_gradient_equals_autograd_of_the_loop(activation, depth, scale):
    """``scale`` 40 gives logits hundreds apart (and saturates many tanh units): the softmax
    must not overflow nor the cross-entropy of a hopeless target become inf. tanh's
    derivative is 1 - h**2 from the stored output."""
    model = build_model("mlp", 5, depth, (1, 8, 8), 10, activation=activation).double()
    thetas = (scale * init_thetas(model, 3, seed=1).double()).requires_grad_()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(7, 1, 8, 8, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 10, (7,), generator=gen)
    ce, grads = model.ce_and_grad_many(unflatten(thetas.detach(), model), x, y)
    loop = torch.stack(
        [
            F.cross_entropy(functional_call(model, unflatten(t, model), (x,)), y, reduction="sum")
            for t in thetas
        ]
    )
    (want,) = torch.autograd.grad(loop.sum(), thetas)
    got = torch.cat([grads[n].reshape(3, -1) for n, _ in model.named_parameters()], 1)
    torch.testing.assert_close(ce, loop.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    if activation == "relu":
        assert got.abs().min() < got.abs().max() / 100  # relu masks zero some entries out


TANH_NETS = [("mlp", 1, (1, 8, 8)), ("mlp", 2, (1, 8, 8)), ("cnn", 2, (1, 8, 8))]
TANH_NETS += [("cnn", 2, (1, 40)), ("resnet", 2, (1, 8, 8)), ("resnet", 1, (3, 32, 32))]


@pytest.mark.parametrize(("arch", "depth", "shape"), TANH_NETS)
def test_tanh_forward_many_equals_forward_and_differs_from_relu(arch, depth, shape):
    model = build_model(arch, 6, depth, shape, 10, activation="tanh")
    assert model.activation == "tanh"
    relu = build_model(arch, 6, depth, shape, 10)
    thetas = init_thetas(model, 3, seed=1)
    assert torch.equal(thetas, init_thetas(relu, 3, seed=1))  # same parameters, same draws
    x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(0))
    loop = torch.stack([functional_call(model, unflatten(t, model), (x,)) for t in thetas])
    torch.testing.assert_close(model.forward_many(unflatten(thetas, model), x), loop)
    relu_loop = torch.stack([functional_call(relu, unflatten(t, relu), (x,)) for t in thetas])
    assert (loop - relu_loop).abs().mean() > 1e-2  # the nonlinearity changed the logits


@pytest.mark.parametrize("depth", [1, 2])
def test_tanh_mlp_is_tanh_of_each_hidden_layer(depth):
    model = build_model("mlp", 5, depth, (1, 8, 8), 3, activation="tanh")
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    h = x.flatten(1)
    for layer in model.hidden:
        h = torch.tanh(h @ layer.weight.T + layer.bias)
    torch.testing.assert_close(model(x), h @ model.head.weight.T + model.head.bias)


def test_tanh_cnn_pools_before_the_activation_with_the_same_values():
    model = build_model("cnn", 4, 1, (1, 8, 8), 10, activation="tanh")
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    h = F.max_pool2d(torch.tanh(model.convs[0](x)), 2)  # the textbook order
    torch.testing.assert_close(model(x), model.head(h.flatten(1)))


def test_tanh_mlp_hand_written_gradient_in_float32():
    model = build_model("mlp", 8, 2, (1, 8, 8), 10, activation="tanh")
    thetas = init_thetas(model, 4, seed=2).requires_grad_()
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 1, 8, 8, generator=gen), torch.randint(0, 10, (16,), generator=gen)
    ce, grads = model.ce_and_grad_many(unflatten(thetas.detach(), model), x, y)
    logits = model.forward_many(unflatten(thetas, model), x)  # (M, B, C)
    loss = F.cross_entropy(logits.transpose(1, 2), y.expand(4, -1), reduction="none").sum(1)
    (want,) = torch.autograd.grad(loss.sum(), thetas)
    got = torch.cat([grads[n].reshape(4, -1) for n, _ in model.named_parameters()], 1)
    torch.testing.assert_close(ce, loss.detach())
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("arch", FUSED)
def test_init_thetas_deterministic_independent_and_rng_neutral(arch):
    model = build_model(arch, 8, 2, (1, 8, 8), 10)
    before = flatten(model)
    state = torch.random.get_rng_state()
    a = init_thetas(model, 4, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    assert torch.equal(flatten(model), before)  # the template is not re-initialized
    assert a.shape == (4, n_params(model)) and a.dtype == torch.float32
    assert torch.equal(a, init_thetas(model, 4, seed=3))
    assert torch.equal(a[:2], init_thetas(model, 2, seed=3))  # rows do not depend on M
    assert not torch.equal(a, init_thetas(model, 4, seed=4))
    # independent draws: the first weight tensor (>= 64 entries) uncorrelated between models
    first = next(model.parameters()).numel()
    corr = torch.corrcoef(a[:, :first])
    assert (corr - torch.eye(4)).abs().max() < 0.5


def test_init_thetas_follows_the_pytorch_default_scale():
    # nn.Linear: weights ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), here fan_in = 64
    model = build_model("mlp", 32, 1, (1, 8, 8), 10)
    w = unflatten(init_thetas(model, 8, seed=0), model)["hidden.0.weight"]
    assert w.abs().max() <= 1 / 8
    assert w.abs().max() > 0.95 / 8
    ln = build_model("transformer", 8, 1, (1, 8, 8), 10)
    assert torch.equal(unflatten(init_thetas(ln, 2, 0), ln)["ln_f.weight"], torch.ones(2, 8))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"arch": "vgg"}, "arch must be one of .*'vgg'"),
        ({"width": 0}, "width must be a positive int, got 0"),
        ({"width": 2.5}, "width must be a positive int, got 2.5"),
        ({"depth": -1}, "depth must be a positive int, got -1"),
        ({"depth": True}, "depth must be a positive int, got True"),
        ({"n_classes": 0}, "n_classes must be a positive int"),
        ({"input_shape": (8, 8, 8, 8)}, "input_shape must be"),
        ({"input_shape": (1, 0)}, "input_shape must be"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    args = {"arch": "mlp", "width": 4, "depth": 1, "input_shape": (1, 8, 8), "n_classes": 10}
    with pytest.raises(ValueError, match=match):
        build_model(**{**args, **kwargs})


@pytest.mark.parametrize("arch", ["mlp", "cnn", "resnet", "transformer"])
@pytest.mark.parametrize("activation", ["sigmoid", "ReLU", None])
def test_unknown_activation_names_the_value_and_the_choices(arch, activation):
    with pytest.raises(ValueError, match=rf"one of \('relu', 'tanh'\), got {activation!r}"):
        build_model(arch, 4, 1, (1, 8, 8), 10, activation=activation)
    assert ACTIVATIONS == ("relu", "tanh")


@pytest.mark.parametrize(
    ("arch", "shape"), [("transformer", (1, 8, 8)), ("resnet9", (3, 32, 32)), ("charlm", (16,))]
)
def test_fixed_nonlinearity_architectures_refuse_tanh(arch, shape):
    with pytest.raises(ValueError, match=rf"activation='tanh': arch '{arch}'"):
        build_model(arch, 4, 1, shape, 10, activation="tanh")
    assert build_model(arch, 4, 1, shape, 10, activation="relu").arch == arch


def test_init_thetas_rejects_bad_m():
    with pytest.raises(ValueError, match="M must be a positive int, got 0"):
        init_thetas(build_model("mlp", 4, 1, (1, 8, 8), 10), 0, seed=0)


def test_initializations_in_two_threads_at_once_equal_their_serial_ones():
    """init_thetas seeds the process's global RNG: threads (the dashboard's background
    runs) must take turns, or their draws interleave (55 of 60 differed without it)."""
    import threading

    from core.nets.models import build_model, init_thetas

    model = build_model("mlp", 32, 2, (1, 8, 8), 10)
    ref = {s: init_thetas(model, 8, s) for s in (0, 1)}
    differ = []

    def work(seed):
        differ.extend(not torch.equal(init_thetas(model, 8, seed), ref[seed]) for _ in range(20))

    threads = [threading.Thread(target=work, args=(s,)) for s in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(differ) == 40 and not any(differ)
