"""The permutation group of each built-in architecture: which axes of which tensors a
permutation of hidden units acts on.

Permuting the units of a hidden layer, together with the rows of the weights that produce
them and the columns of the weights that read them, leaves the function unchanged (every
nonlinearity here acts unit by unit, or, like LayerNorm, is symmetric in its units with a
per-unit affine that moves along). ``permutation_spec(model)`` states, for a network built
by ``core.nets.models.build_model`` (or a ``CharTransformer``), one named permutation per
group of units that may be shuffled, and the blocks of tensors (``Slot``) it acts on, after
Ainsworth et al., "Git Re-Basin: Merging Models modulo Permutation Symmetries" (ICLR 2023).

The groups (W: width; every architecture leaves its inputs and its classes in place):

- ``mlp``: one permutation per hidden layer, ``hidden.i`` (W units).
- ``cnn``: one per conv block, ``convs.i`` (W channels); the head reads the flattened
  (channel, position) features, so it is viewed as (C, W, positions).
- ``resnet``: the residual stream ``res`` (W channels: the stem's output, every block's
  input and output, the head's input; the skip connections tie them into one), and the
  inner channels of each block, ``blocks.i``.
- ``resnet9``: per stage j, its stream ``stages.j`` (the stage conv's output, every residual
  block's input and output, with the BatchNorm weight, bias and running statistics of those
  channels; the final ``norm`` moves with ``stages.2``) and each block's inner channels
  ``stages.j.blocks.b``, with their BatchNorm.
- ``transformer`` and ``charlm``: the residual stream ``res`` (embedding, positional
  embedding, every LayerNorm's weight and bias, the blocks' inputs and outputs, the head's
  input); each block's MLP units; and within each attention head, a permutation of its
  query/key dimensions (the same for q and k: their dot product is unchanged) and one of its
  value dimensions (shared with the columns of the output projection that read them).
  Exchanging whole heads is also a symmetry; it is left out (a subgroup is stated).

Where the nonlinearity is odd (tanh: tanh(-x) = -tanh(x)), negating a unit, with the row and
bias that produce it and the columns that read it, also leaves the function unchanged: the
group is the signed permutations (``PermutationSpec.signed``). That holds for the hidden
layers of a tanh ``mlp``; the ``cnn`` max-pools (max(-x) is not -max(x)) and the residual
streams add, so they keep the permutations alone.

Any other module raises ``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from core.nets.text import CharTransformer

SUPPORTED = ("mlp", "cnn", "resnet", "resnet9", "transformer", "charlm")


@dataclass(frozen=True)
class Slot:
    """A block of one tensor and the permutation acting on each of its axes.

    The tensor ``name`` (a parameter, or a buffer such as a BatchNorm running mean) is
    viewed with shape ``view`` and indexed by ``index`` (ints and slices); axis k of the
    block is permuted by the permutation ``axes[k]`` (None: left in place).
    """

    name: str
    view: tuple[int, ...]
    index: tuple
    axes: tuple[str | None, ...]


@dataclass(frozen=True)
class PermutationSpec:
    """The permutations of one architecture and the blocks they act on.

    ``params``: (name, shape) of every parameter in ``named_parameters()`` order, the layout
    of a flat ``theta`` (P,). ``sizes``: permutation name -> number of units. ``slots``: the
    blocks; blocks of one tensor are disjoint. ``signed``: the permutations whose units may
    also change sign (an odd nonlinearity reads them).
    """

    arch: str
    params: tuple[tuple[str, tuple[int, ...]], ...]
    sizes: dict[str, int]
    slots: tuple[Slot, ...]
    signed: tuple[str, ...] = ()

    def acting(self, perm: str) -> list[tuple[Slot, int]]:
        """(slot, axis) of every block axis that the permutation ``perm`` acts on."""
        return [(s, k) for s in self.slots for k, p in enumerate(s.axes) if p == perm]


def block_shape(slot: Slot) -> tuple[int, ...]:
    """Shape of a slot's block: the axes of its view that ``index`` does not fix."""
    index = slot.index + (slice(None),) * (len(slot.view) - len(slot.index))
    return tuple(n for n, i in zip(slot.view, index, strict=True) if not isinstance(i, int))


class _Builder:
    """Collects slots of one model's tensors (shapes read from the model)."""

    def __init__(self, model: nn.Module):
        self.shapes = {n: tuple(t.shape) for n, t in model.named_parameters()}
        self.shapes |= {n: tuple(t.shape) for n, t in model.named_buffers()}
        self.slots: list[Slot] = []
        self.signed: list[str] = []

    def add(self, name: str, *axes: str | None, view=None, index=()) -> None:
        """Slot of ``name`` (its own shape unless ``view``); trailing axes left in place."""
        view = tuple(view or self.shapes[name])
        rank = len(view) - sum(isinstance(i, int) for i in index)
        self.slots.append(
            Slot(name, view, tuple(index), tuple(axes) + (None,) * (rank - len(axes)))
        )

    def linear(self, prefix: str, out: str | None, inp: str | None) -> None:
        """A linear or convolution layer ``prefix`` (weight (O, I, *K), bias (O,) if any)."""
        self.add(prefix + "weight", out, inp)
        if prefix + "bias" in self.shapes:
            self.add(prefix + "bias", out)

    def norm(self, prefix: str, perm: str) -> None:
        """A LayerNorm or BatchNorm: weight, bias and any running statistics."""
        for t in ("weight", "bias", "running_mean", "running_var"):
            if prefix + t in self.shapes:
                self.add(prefix + t, perm)

    def attention(self, prefix: str, qkv: str, out: str, heads: int, res: str) -> None:
        """qkv (3W, W) laid out (q|k|v, head, dim); the output projection reads (head, dim)."""
        w = self.shapes[prefix + qkv + ".weight"][1]
        e = w // heads
        for h in range(heads):
            qk, v = f"{prefix}qk{h}", f"{prefix}v{h}"
            for part, perm in ((0, qk), (1, qk), (2, v)):
                self.add(
                    prefix + qkv + ".weight", perm, res, view=(3, heads, e, w), index=(part, h)
                )
                self.add(prefix + qkv + ".bias", perm, view=(3, heads, e), index=(part, h))
            self.add(prefix + out + ".weight", res, v, view=(w, heads, e), index=(slice(None), h))
        self.add(prefix + out + ".bias", res)

    def spec(self, arch: str, model: nn.Module) -> PermutationSpec:
        sizes: dict[str, int] = {}
        for s in self.slots:
            for n, p in zip(block_shape(s), s.axes, strict=True):
                if p is not None and sizes.setdefault(p, n) != n:  # a bug in a builder
                    raise AssertionError(f"{arch}: permutation {p} of {sizes[p]} and {n} units")
        params = tuple((n, tuple(t.shape)) for n, t in model.named_parameters())
        return PermutationSpec(arch, params, sizes, tuple(self.slots), tuple(self.signed))


def _mlp(b: _Builder, model) -> None:
    for i in range(len(model.hidden)):
        b.linear(f"hidden.{i}.", f"hidden.{i}", f"hidden.{i - 1}" if i else None)
        if model.activation == "tanh":
            b.signed.append(f"hidden.{i}")
    b.linear("head.", None, f"hidden.{len(model.hidden) - 1}")


def _cnn(b: _Builder, model) -> None:
    n = len(model.convs)
    for i in range(n):
        b.linear(f"convs.{i}.", f"convs.{i}", f"convs.{i - 1}" if i else None)
    c, features = b.shapes["head.weight"]
    b.add("head.weight", None, f"convs.{n - 1}", view=(c, model.width, features // model.width))
    b.add("head.bias")


def _resnet(b: _Builder, model) -> None:
    b.linear("stem.", "res", None)
    for i in range(len(model.blocks)):
        b.linear(f"blocks.{i}.conv1.", f"blocks.{i}", "res")
        b.linear(f"blocks.{i}.conv2.", "res", f"blocks.{i}")
    b.linear("head.", None, "res")


def _resnet9(b: _Builder, model) -> None:
    prev = None
    for j, stage in enumerate(model.stages):
        s = f"stages.{j}"
        b.linear(s + ".conv.", s, prev)
        b.norm(s + ".bn.", s)
        for k in range(len(stage.blocks)):
            q = f"{s}.blocks.{k}"
            b.linear(q + ".conv1.", q, s)
            b.norm(q + ".bn1.", q)
            b.linear(q + ".conv2.", s, q)
            b.norm(q + ".bn2.", s)
        prev = s
    b.norm("norm.", prev)
    b.linear("head.", None, prev)


def _transformer(b: _Builder, model) -> None:
    b.linear("embed.", "res", None)
    b.add("pos", None, "res")
    for i, block in enumerate(model.blocks):
        q = f"blocks.{i}."
        b.norm(q + "ln1.", "res")
        b.attention(q, "qkv", "proj", block.heads, "res")
        b.norm(q + "ln2.", "res")
        b.linear(q + "fc1.", q + "mlp", "res")
        b.linear(q + "fc2.", "res", q + "mlp")
    b.norm("ln_f.", "res")
    b.linear("head.", None, "res")


def _charlm(b: _Builder, model) -> None:
    b.add("embed.weight", None, "res")
    b.add("position", None, "res")
    for i, block in enumerate(model.blocks):
        q = f"blocks.{i}."
        b.norm(q + "norm1.", "res")
        b.attention(q, "qkv", "out", block.heads, "res")
        b.norm(q + "norm2.", "res")
        b.linear(q + "mlp.0.", q + "mlp", "res")
        b.linear(q + "mlp.2.", "res", q + "mlp")
    b.norm("norm.", "res")
    b.linear("head.", None, "res")


_BUILDERS = {
    "mlp": _mlp,
    "cnn": _cnn,
    "resnet": _resnet,
    "resnet9": _resnet9,
    "transformer": _transformer,
    "charlm": _charlm,
}


def permutation_spec(model: nn.Module) -> PermutationSpec:
    """The permutation group of ``model`` (module docstring), from its structure.

    Raises ``ValueError`` naming the model unless it is one of the built-in architectures
    (``SUPPORTED``, as built by ``core.nets.models.build_model``) or a ``CharTransformer``.
    """
    arch = getattr(model, "arch", None)
    if arch is None and isinstance(model, CharTransformer):
        arch = "charlm"
    if arch not in _BUILDERS:
        name = arch if arch is not None else type(model).__name__
        raise ValueError(
            f"model {name!r} has no stated permutation group; weight matching supports the "
            f"built-in architectures {SUPPORTED}"
        )
    b = _Builder(model)
    _BUILDERS[arch](b, model)
    return b.spec(arch, model)
