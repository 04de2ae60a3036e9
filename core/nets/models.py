"""Architectures, and the flat parameter vectors ``theta`` (P,) that the engine moves around.

Four small families, each built for any input shape (C, H, W) (images) or (C, L) (sequences):

- ``mlp``: ``depth`` hidden layers of ``width`` units with ReLU (or tanh with
  ``activation='tanh'``, as for cnn and resnet: ``ACTIVATIONS``), linear head.
- ``cnn``: ``depth`` blocks [3x3 conv to ``width`` channels, ReLU, 2x max-pool while the
  spatial size is at least 2], flatten, linear head (the authors' CNN, with 3x3 kernels).
  The code pools before the activation: max-pool commutes with any increasing function (ReLU,
  tanh), and the activation then touches 4x less.
- ``resnet``: stem conv to ``width`` channels + ReLU + 2x max-pools until the spatial size is
  at most 8, ``depth`` residual blocks relu(h + conv(relu(conv(h)))), global average pool,
  linear head. No BatchNorm: many parameter vectors are evaluated in one batch, and batch
  statistics would mix examples (and running statistics would mix models).
- ``transformer``: tokens = image rows (C*W features each) or sequence positions (C features),
  linear embedding to ``width`` + learned positional embedding, ``depth`` pre-norm encoder
  blocks (hand-written attention with 2 heads, or 1 for odd widths; MLP 2*width with GELU),
  final LayerNorm, mean over tokens, linear head. LayerNorm normalizes each example alone.

Every model also has ``forward_many(params, x)``: the same network for M parameter sets at
once, ``params`` mapping each parameter name to an (M, *shape) tensor (``unflatten`` of an
(M, P) ``thetas``), ``x`` (B, *input_shape) shared by all M, logits (M, B, C). It fuses the M
networks into one wide computation (batched matmuls, grouped convolutions) and is checked
against ``forward`` in the tests; ``core.nets.objective`` picks it where it is fastest. The MLP
also has ``ce_and_grad_many(params, x, y)``: its summed cross-entropy and the gradient by a
hand-written backward pass, which ``core.nets.objective`` uses for fused MLP gradients.
"""

from __future__ import annotations

import copy
import math
import numbers
import threading

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.nets.resnet9 import ResNet9
from core.nets.text import CharTransformer

ARCHITECTURES = ("mlp", "cnn", "resnet", "transformer", "resnet9", "charlm")
TEXT_ARCHITECTURES = ("charlm",)  # read character ids (core.nets.text), not images
WITH_BATCHNORM = ("resnet9",)  # architectures whose loss depends on model.batchnorm
ACTIVATIONS = ("relu", "tanh")  # hidden-unit nonlinearities of mlp, cnn and resnet
_ACTIVATION_FNS = {"relu": F.relu, "tanh": torch.tanh}


# ---------------------------------------------------------------------------------------------
# Batched building blocks shared by the forward_many implementations


def linear_many(h: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """M linear layers on M inputs: h (M, ..., I), w (M, O, I), b (M, O) -> (M, ..., O)."""
    m, i = h.shape[0], h.shape[-1]
    out = torch.baddbmm(b.unsqueeze(1), h.reshape(m, -1, i), w.transpose(1, 2))  # (M, N, O)
    return out.view(*h.shape[:-1], w.shape[1])


def linear_shared(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """M linear layers on one shared input: x (..., I), w (M, O, I), b (M, O) -> (M, ..., O)."""
    m, o, i = w.shape
    out = x.reshape(-1, i) @ w.reshape(m * o, i).T  # (N, M*O): one wide matmul
    out = out.view(-1, m, o).transpose(0, 1) + b.unsqueeze(1)  # (M, N, O)
    return out.reshape(m, *x.shape[:-1], o)


def _conv(x: Tensor, w: Tensor, b: Tensor, groups: int) -> Tensor:
    conv = F.conv1d if w.dim() == 3 else F.conv2d
    return conv(x, w, b, padding=w.shape[-1] // 2, groups=groups)


def _activation(name: str):
    """The function of an activation name (one of ``ACTIVATIONS``)."""
    if name not in ACTIVATIONS:  # a tuple: unhashable values are refused, not a TypeError
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")
    return _ACTIVATION_FNS[name]


def _pool(h: Tensor) -> Tensor:
    return F.max_pool1d(h, 2) if h.dim() == 3 else F.max_pool2d(h, 2)


def conv_many(h: Tensor, w: Tensor, b: Tensor, shared: bool) -> Tensor:
    """M convolutions as one grouped convolution (model m owns channels m*O .. (m+1)*O - 1).

    h (B, M*I, *S), or (B, I, *S) when ``shared`` (the input of all M); w (M, O, I, *K),
    b (M, O) -> (B, M*O, *S).
    """
    m = w.shape[0]
    return _conv(h, w.flatten(0, 1), b.flatten(), groups=1 if shared else m)


def _channels_to_models(h: Tensor, m: int) -> Tensor:
    """(B, M*O, *S) -> (M, B, O*prod(S)), each model's features in nn.Flatten order."""
    return h.reshape(h.shape[0], m, -1).transpose(0, 1)


def layer_norm_many(h: Tensor, g: Tensor, b: Tensor) -> Tensor:
    """h (M, ..., D), g and b (M, D): per-example normalization, per-model affine."""
    view = (g.shape[0],) + (1,) * (h.dim() - 2) + (g.shape[1],)
    return F.layer_norm(h, h.shape[-1:]) * g.view(view) + b.view(view)


def attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Softmax attention over the token axis: q, k, v (..., T, E) -> (..., T, E)."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (..., T, T)
    return scores.softmax(-1) @ v


# ---------------------------------------------------------------------------------------------
# Architectures


class MLP(nn.Module):
    def __init__(
        self, width: int, depth: int, input_shape: tuple, n_classes: int, activation: str = "relu"
    ):
        super().__init__()
        self.activation, self.act = activation, _activation(activation)
        dims = [math.prod(input_shape)] + [width] * depth  # flattened input, hidden layers
        self.hidden = nn.ModuleList(nn.Linear(dims[i], dims[i + 1]) for i in range(depth))
        self.head = nn.Linear(width, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = x.flatten(1)  # (B, D)
        for layer in self.hidden:
            h = self.act(layer(h))  # (B, width)
        return self.head(h)  # (B, C)

    def _hidden_many(self, p: dict[str, Tensor], x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """The input (D, B), shared by all M, and every hidden layer's output (M, W, B)."""
        # features-first layout (M, features, B): every matmul reads and writes contiguous
        x0 = h = x.flatten(1).T
        acts = []
        for i in range(len(self.hidden)):
            w, b = p[f"hidden.{i}.weight"], p[f"hidden.{i}.bias"]  # (M, W, I), (M, W)
            if i == 0:  # one wide matmul: (M*W, D) @ (D, B)
                h = torch.addmm(b.reshape(-1, 1), w.reshape(-1, w.shape[-1]), h)
            else:
                h = torch.baddbmm(b.unsqueeze(-1), w, h)
            # in place on the matmul's own output (not on a view of it, which autograd would
            # undo with a zero-filled copy): relu's and tanh's backward need only the result
            h = h.tanh_() if self.activation == "tanh" else h.relu_()
            h = h.view(*w.shape[:2], -1)  # (M, W, B)
            acts.append(h)
        return x0, acts

    def forward_many(self, p: dict[str, Tensor], x: Tensor) -> Tensor:
        h = self._hidden_many(p, x)[1][-1]
        logits = torch.baddbmm(p["head.bias"].unsqueeze(-1), p["head.weight"], h)  # (M, C, B)
        return logits.transpose(1, 2)  # (M, B, C)

    def ce_and_grad_many(
        self, p: dict[str, Tensor], x: Tensor, y: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Summed cross-entropy (M,) of the M networks on (x, y), and its gradient w.r.t.
        every parameter (name -> (M, *shape)), by a hand-written backward pass.

        The forward pass is ``forward_many``'s (``_hidden_many``); the backward reuses its
        buffers in place (the softmax, one exp per logit, into the logits; the ReLU mask, or
        tanh's derivative 1 - h**2, into the incoming gradient) and skips autograd's graph,
        its zero-filled gradients of the parameter slices and the input gradient of the first
        layer. Equal to autograd to float32 rounding (tests/nets/test_models.py); faster than
        autograd's backward (bench/engine.py, ``fused, autograd``).
        """
        n = len(self.hidden)
        names = [f"hidden.{i}" for i in range(n)] + ["head"]  # layer i's parameters
        x0, acts = self._hidden_many(p, x)
        w, b = p["head.weight"], p["head.bias"]
        z = torch.baddbmm(b.unsqueeze(-1), w, acts[-1])  # (M, C, B) logits
        target = y.view(1, 1, -1).expand(w.shape[0], 1, -1)
        # softmax with one exp per logit (log_softmax, then exp, takes two), in z's memory
        z.sub_(z.amax(1, keepdim=True))
        picked = z.gather(1, target)  # (M, 1, B) the target's shifted logit
        total = z.exp_().sum(1, keepdim=True)  # (M, 1, B)
        ce = (total.log() - picked).sum((1, 2))  # -log softmax at the target
        g = z.div_(total)  # d ce / d logits = softmax - one-hot
        g.scatter_add_(1, target, torch.full(target.shape, -1.0, dtype=g.dtype, device=g.device))
        grads = {}
        tanh = self.activation == "tanh"
        for i in range(n, -1, -1):  # g: gradient w.r.t. layer i's output (before activation)
            inp, w = (acts[i - 1] if i else x0), p[f"{names[i]}.weight"]
            if i == 0:  # one wide matmul; the input needs no gradient
                grads[f"{names[i]}.weight"] = (g.view(-1, g.shape[-1]) @ inp.T).view_as(w)
            else:
                grads[f"{names[i]}.weight"] = torch.bmm(g, inp.transpose(1, 2))
            grads[f"{names[i]}.bias"] = g.sum(2)
            if i:
                g = torch.bmm(w.transpose(1, 2), g)  # (M, W, B)
                if tanh:  # tanh' = 1 - h**2, from the stored output h
                    torch.ops.aten.tanh_backward.grad_input(g, inp, grad_input=g)
                else:
                    torch.ops.aten.threshold_backward.grad_input(g, inp, 0, grad_input=g)
        return ce, grads


class CNN(nn.Module):
    def __init__(
        self, width: int, depth: int, input_shape: tuple, n_classes: int, activation: str = "relu"
    ):
        super().__init__()
        self.activation, self.act = activation, _activation(activation)
        conv = nn.Conv2d if len(input_shape) == 3 else nn.Conv1d
        channels, size = input_shape[0], tuple(input_shape[1:])
        self.convs, pools = nn.ModuleList(), []
        for _ in range(depth):
            self.convs.append(conv(channels, width, kernel_size=3, padding=1))
            pools.append(min(size) >= 2)
            size = tuple(s // 2 for s in size) if pools[-1] else size
            channels = width
        self.pools = tuple(pools)  # 2x max-pool after block i?
        self.head = nn.Linear(width * math.prod(size), n_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = x  # (B, C_in, *S)
        for conv, pool in zip(self.convs, self.pools, strict=True):
            h = conv(h)  # (B, W, *S)
            # pool before the activation (increasing, so it commutes with max): less work
            h = self.act(_pool(h) if pool else h)
        return self.head(h.flatten(1))  # (B, C)

    def forward_many(self, p: dict[str, Tensor], x: Tensor) -> Tensor:
        m = p["head.weight"].shape[0]
        h = x  # (B, C_in, *S), shared by all M
        for i, pool in enumerate(self.pools):
            h = conv_many(h, p[f"convs.{i}.weight"], p[f"convs.{i}.bias"], shared=i == 0)
            h = self.act(_pool(h) if pool else h)  # (B, M*W, *S)
        return linear_many(_channels_to_models(h, m), p["head.weight"], p["head.bias"])


class ResidualBlock(nn.Module):
    def __init__(self, width: int, conv: type[nn.Module], act=F.relu):
        super().__init__()
        self.act = act
        self.conv1 = conv(width, width, kernel_size=3, padding=1)
        self.conv2 = conv(width, width, kernel_size=3, padding=1)

    def forward(self, h: Tensor) -> Tensor:
        return self.act(h + self.conv2(self.act(self.conv1(h))))


class ResNet(nn.Module):
    def __init__(
        self, width: int, depth: int, input_shape: tuple, n_classes: int, activation: str = "relu"
    ):
        super().__init__()
        self.activation, self.act = activation, _activation(activation)
        conv = nn.Conv2d if len(input_shape) == 3 else nn.Conv1d
        size = tuple(input_shape[1:])
        self.stem = conv(input_shape[0], width, kernel_size=3, padding=1)
        self.stem_pools = 0  # 2x max-pools after the stem: down to at most 8 per axis
        while max(size) > 8:
            size, self.stem_pools = tuple(s // 2 for s in size), self.stem_pools + 1
        self.blocks = nn.ModuleList(ResidualBlock(width, conv, self.act) for _ in range(depth))
        self.head = nn.Linear(width, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.stem(x))  # (B, W, *S)
        for _ in range(self.stem_pools):
            h = _pool(h)
        for block in self.blocks:
            h = block(h)  # (B, W, *S)
        return self.head(h.flatten(2).mean(-1))  # global average pool (B, W) -> (B, C)

    def forward_many(self, p: dict[str, Tensor], x: Tensor) -> Tensor:
        m = p["head.weight"].shape[0]
        h = self.act(conv_many(x, p["stem.weight"], p["stem.bias"], shared=True))  # (B, M*W, *S)
        for _ in range(self.stem_pools):
            h = _pool(h)
        for i in range(len(self.blocks)):
            q = f"blocks.{i}."
            r = self.act(conv_many(h, p[q + "conv1.weight"], p[q + "conv1.bias"], False))
            h = self.act(h + conv_many(r, p[q + "conv2.weight"], p[q + "conv2.bias"], False))
        h = _channels_to_models(h.flatten(2).mean(-1), m)  # (M, B, W)
        return linear_many(h, p["head.weight"], p["head.bias"])


class EncoderBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.fc1, self.fc2 = nn.Linear(width, 2 * width), nn.Linear(2 * width, width)

    def forward(self, h: Tensor) -> Tensor:
        h = h + self.proj(self._attend(self.qkv(self.ln1(h))))  # (B, T, W)
        return h + self.fc2(F.gelu(self.fc1(self.ln2(h))))

    def _attend(self, qkv: Tensor) -> Tensor:
        """(..., T, 3W) -> (..., T, W): split into heads, attend, merge the heads."""
        *lead, t, _ = qkv.shape
        qkv = qkv.view(*lead, t, 3, self.heads, -1).movedim(-3, 0).movedim(-3, -2)
        out = attention(*qkv.unbind(0))  # q, k, v (..., H, T, E) -> (..., H, T, E)
        return out.transpose(-3, -2).reshape(*lead, t, -1)  # (..., T, H*E)

    def forward_many(self, p: dict[str, Tensor], q: str, h: Tensor) -> Tensor:
        a = layer_norm_many(h, p[q + "ln1.weight"], p[q + "ln1.bias"])  # (M, B, T, W)
        a = self._attend(linear_many(a, p[q + "qkv.weight"], p[q + "qkv.bias"]))
        h = h + linear_many(a, p[q + "proj.weight"], p[q + "proj.bias"])
        a = layer_norm_many(h, p[q + "ln2.weight"], p[q + "ln2.bias"])
        a = F.gelu(linear_many(a, p[q + "fc1.weight"], p[q + "fc1.bias"]))  # (M, B, T, 2W)
        return h + linear_many(a, p[q + "fc2.weight"], p[q + "fc2.bias"])


class Transformer(nn.Module):
    def __init__(self, width: int, depth: int, input_shape: tuple, n_classes: int):
        super().__init__()
        self.image = len(input_shape) == 3
        # tokens: rows of an image (C*W features) or positions of a sequence (C features)
        n_tokens = input_shape[1]
        token_dim = input_shape[0] * input_shape[2] if self.image else input_shape[0]
        self.embed = nn.Linear(token_dim, width)
        self.pos = nn.Parameter(torch.zeros(n_tokens, width))
        heads = 2 if width % 2 == 0 else 1
        self.blocks = nn.ModuleList(EncoderBlock(width, heads) for _ in range(depth))
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, n_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialize the positional embedding (the submodules initialize themselves)."""
        nn.init.normal_(self.pos, std=0.02)

    def tokens(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, H, C*W) or (B, C, L) -> (B, L, C)."""
        if self.image:
            return x.permute(0, 2, 1, 3).flatten(2)
        return x.transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        h = self.embed(self.tokens(x)) + self.pos  # (B, T, W)
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln_f(h).mean(1))  # (B, C)

    def forward_many(self, p: dict[str, Tensor], x: Tensor) -> Tensor:
        h = linear_shared(self.tokens(x), p["embed.weight"], p["embed.bias"])  # (M, B, T, W)
        h = h + p["pos"].unsqueeze(1)
        for i, block in enumerate(self.blocks):
            h = block.forward_many(p, f"blocks.{i}.", h)
        h = layer_norm_many(h, p["ln_f.weight"], p["ln_f.bias"]).mean(2)  # (M, B, W)
        return linear_many(h, p["head.weight"], p["head.bias"])  # (M, B, C)


class CharLM(CharTransformer):
    """``CharTransformer`` built like the other architectures: ``input_shape`` (L,) is the
    context and ``n_classes`` the vocabulary; two heads where the width is even."""

    def __init__(self, width: int, depth: int, input_shape: tuple, n_classes: int):
        if len(input_shape) != 1:
            raise ValueError(f"charlm reads (L,) character ids, got input_shape {input_shape}")
        heads = 2 if width % 2 == 0 else 1
        super().__init__(n_classes, width, depth, context=input_shape[0], heads=heads)


_CLASSES = {
    "mlp": MLP,
    "cnn": CNN,
    "resnet": ResNet,
    "transformer": Transformer,
    "resnet9": ResNet9,
    "charlm": CharLM,
}
WITH_ACTIVATION = ("mlp", "cnn", "resnet")  # the architectures that take ``activation``
# the architectures with a hand-written batched forward (forward_many): "fused" evaluation
FUSED_ARCHITECTURES = tuple(a for a, c in _CLASSES.items() if hasattr(c, "forward_many"))


def _is_positive_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0


def build_model(
    arch: str, width: int, depth: int, input_shape, n_classes: int, activation: str = "relu"
) -> nn.Module:
    """Build one network with PyTorch's default initialization.

    Parameters
    ----------
    arch : str
        One of ``ARCHITECTURES``.
    width : int
        Hidden units (mlp), channels (cnn, resnet; the first stage of resnet9) or embedding
        size (transformer).
    depth : int
        Hidden layers, conv blocks, residual blocks (per stage for resnet9) or encoder blocks.
    input_shape : tuple of int
        (C, H, W) for images or (C, L) for sequences; one example, no batch axis.
    n_classes : int
        Outputs of the linear head.
    activation : str
        Hidden-unit nonlinearity, one of ``ACTIVATIONS``; other than "relu" only for the
        architectures of ``WITH_ACTIVATION`` (mlp, cnn, resnet).

    Returns
    -------
    nn.Module
        Maps (B, *input_shape) to logits (B, n_classes); has ``arch``, ``width``, ``depth``,
        ``input_shape``, ``n_classes`` attributes (and ``activation``: mlp, cnn, resnet), and
        ``forward_many`` but for the ResNet9 (its BatchNorm layers go through
        ``core.nets.norm``).
    """
    if arch not in _CLASSES:
        raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if activation != "relu" and arch not in WITH_ACTIVATION:
        raise ValueError(
            f"activation={activation!r}: arch {arch!r} has a fixed nonlinearity "
            f"(activation is for {', '.join(WITH_ACTIVATION)})"
        )
    for name, v in (("width", width), ("depth", depth), ("n_classes", n_classes)):
        if not _is_positive_int(v):
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    shape = tuple(input_shape) if isinstance(input_shape, tuple | list) else None
    if shape is None or len(shape) not in (1, 2, 3) or not all(map(_is_positive_int, shape)):
        raise ValueError(
            f"input_shape must be (C, H, W), (C, L) or (L,) of positive ints, got {input_shape!r}"
        )
    if (arch in TEXT_ARCHITECTURES) != (len(shape) == 1):
        raise ValueError(f"arch {arch!r} does not read inputs of shape {shape}")
    args = (int(width), int(depth), tuple(map(int, shape)), int(n_classes))
    extra = {"activation": activation} if arch in WITH_ACTIVATION else {}
    model = _CLASSES[arch](*args, **extra)  # mlp, cnn and resnet keep .activation
    model.arch, model.width, model.depth = arch, int(width), int(depth)
    model.input_shape, model.n_classes = tuple(map(int, shape)), int(n_classes)
    return model


# ---------------------------------------------------------------------------------------------
# Flat parameters: theta (P,) holds every parameter in named_parameters() order


def n_params(model: nn.Module) -> int:
    """P, the length of a flat parameter vector."""
    return sum(p.numel() for p in model.parameters())


def flatten(model: nn.Module) -> Tensor:
    """The module's parameters as one detached vector (P,)."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def unflatten(theta: Tensor, model: nn.Module) -> dict[str, Tensor]:
    """Views of ``theta`` (..., P) with the module's shapes: name -> (..., *shape).

    Gradients flow back to ``theta``; leading axes (e.g. M) are kept.
    """
    if theta.shape[-1] != n_params(model):
        raise ValueError(
            f"theta must have {n_params(model)} entries, got shape {tuple(theta.shape)}"
        )
    out, start = {}, 0
    for name, p in model.named_parameters():
        out[name] = theta[..., start : start + p.numel()].unflatten(-1, p.shape)
        start += p.numel()
    return out


def reset_parameters(model: nn.Module) -> None:
    """Re-draw every parameter with PyTorch's default initialization (global CPU RNG)."""
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()


# reset_parameters draws from the process's global RNG: runs in threads of one process (the
# dashboard's background jobs) would interleave their draws without this lock
_GLOBAL_RNG = threading.Lock()


def init_thetas(model: nn.Module, m: int, seed: int) -> Tensor:
    """M independent default initializations of ``model`` as (M, P) float32 on the CPU.

    Model i is initialized under its own seed (drawn from ``torch.Generator().manual_seed(seed)``)
    inside ``torch.random.fork_rng``, so the result depends on ``seed`` only and the global RNG
    state is left as it was (threads take turns). The first k rows do not depend on M.
    """
    if not _is_positive_int(m):
        raise ValueError(f"M must be a positive int, got {m!r}")
    seeds = torch.randint(0, 2**62, (m,), generator=torch.Generator().manual_seed(seed))
    fresh = copy.deepcopy(model).cpu()
    rows = []
    with _GLOBAL_RNG, torch.random.fork_rng(devices=[]):  # one thread at a time seeds it
        for s in seeds.tolist():
            torch.random.default_generator.manual_seed(s)
            reset_parameters(fresh)
            rows.append(flatten(fresh))
    return torch.stack(rows).float()  # (M, P)
