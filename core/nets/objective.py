"""A network's loss as a batched objective: thetas (M, P) -> values (M,).

``NetworkObjective(model, data)(thetas)`` is the mean cross-entropy of ``model`` on the whole
train set, plus ``l2 * ||theta||^2 / 2`` over all parameters (biases included), for M flat
parameter vectors at once. It satisfies the objective contract of ``core.engine.evaluate``: row m
of the output depends on row m of ``thetas`` only (nothing reduces across the M networks),
and autograd gives the gradient w.r.t. ``thetas``.

Three ways to evaluate M networks, equal to float32 rounding in values and gradients:

- ``"loop"``: ``torch.func.functional_call`` once per network (the baseline).
- ``"vmap"``: ``torch.func.vmap`` over ``functional_call`` (the reference batched form).
- ``"fused"``: the model's hand-written ``forward_many`` (``core.nets.models``): the M networks as
  one wide network, batched matmuls for linear layers, grouped convolutions for conv layers.
  Where the model also has ``ce_and_grad_many`` (the MLP), the gradient is its hand-written
  backward pass, computed with the loss (``HandGradCE`` for autograd callers), its
  activations freed before the backward pass is asked for. ``values_and_grads(thetas)``,
  which ``core.engine.evaluate`` calls, takes it without autograd around it at all (the l2 term and
  the per-block slices by hand, the same numbers to the bit).

``"auto"`` takes the fastest for the architecture and device from ``AUTO_STRATEGY``, a table
measured by ``bench/engine.py`` (see BENCHMARKS.md), and the loop for a block of one network
(where the batched forms only add overhead: on a CPU the cache-sized blocks of the conv nets
and the transformer at full batch hold one network). Modules without ``forward_many`` get
``"loop"``.

Memory stays bounded: the M vectors (and, if one network on the whole data set is too much,
the examples) are split into blocks sized from the activation memory of one example. When a
gradient is needed and there is more than one block, each block runs under activation
checkpointing, so only one block's activations are alive at a time (one extra forward pass).

Speed has its own block size, ``block_size(m)``, which ``core.engine.evaluate`` asks for and uses
as its chunk (a forward and backward pass per chunk, so no checkpointing is needed): on a CPU,
as many vectors as keep one block's activations within half the last-level cache
(``cpu_block_bytes``), but not fewer than ``MIN_BLOCK_ROWS`` network-examples; on a GPU, the
memory budget. ``bench/engine.py`` measures every strategy and block size (BENCHMARKS.md).
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import numbers

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap
from torch.utils.checkpoint import checkpoint

from core.engine.evaluate import autograd_values_and_grads
from core.nets.device import (
    choose_strategy,
    cpu_block_bytes,
    default_memory_budget,
    resolve_device,
)
from core.nets.handgrad import HandGradCE, hand_ce_and_grad
from core.nets.models import init_thetas, n_params, unflatten
from core.nets.norm import Forward, batchnorms

log = logging.getLogger(__name__)

ACTIVATION_FACTOR = 2  # peak memory / saved activations, with a margin
# An evaluation without gradients holds the logits and the loss's temporaries of their size
# (log-softmax, the class indices' gather) per network and example: for narrow networks most
# of its memory, so value-only blocks are sized by these copies, not the saved activations.
LOGIT_COPIES = 3
# A speed block holds at least this many (network, example) pairs: fewer and the per-call
# overhead outweighs the cache.
MIN_BLOCK_ROWS = 1024


def _bytes_per_example(model: nn.Module, x: Tensor) -> tuple[int, int]:
    """Bytes that autograd saves for backward per example (two tiny forward passes), not
    counting the input itself (every strategy shares one input among the M networks), and
    the bytes of one example's logits."""
    logits = 0

    def saved(b: int) -> int:
        nonlocal logits
        total, inp = 0, x[:1].expand(b, *x.shape[1:]).contiguous()
        shared = inp.untyped_storage().data_ptr()

        def pack(t: Tensor) -> Tensor:
            nonlocal total
            if t.untyped_storage().data_ptr() != shared:
                total += t.numel() * t.element_size()
            return t

        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(inp)
        logits = out[0].numel() * out.element_size()
        return total

    return max(saved(2) - saved(1), 1), logits


class NetworkObjective:
    """Cross-entropy + l2 * ||theta||^2 / 2 of one architecture on one dataset, for M vectors.

    Satisfies the objective contract: ``__call__(thetas (M, P)) -> (M,)``, differentiable.

    Parameters
    ----------
    model : nn.Module
        Template network (``core.nets.models.build_model``); only its structure is used. Copied.
    data : Dataset-like
        ``x_train`` (B, *input_shape), ``y_train`` (B,) int64, ``x_test``, ``y_test``.
    l2 : float
        Weight of ``||theta||^2 / 2`` (all parameters) in the objective.
    batch_size : int or None
        Examples per ``minibatch(step)``; None for full batch.
    seed : int
        Seeds the minibatch order: epoch e is ``randperm`` from ``torch.Generator(seed + e)``.
    strategy : str
        ``"auto"``, ``"loop"``, ``"vmap"`` or ``"fused"`` (module docstring).
    device : str or torch.device
        Where data and evaluation live; ``"auto"`` is cuda if available else cpu.
    max_points : int or None
        Most parameter vectors per block; None sizes blocks from ``memory_budget``.
    memory_budget : int or None
        Bytes of activations per block; None for ``default_memory_budget(device)``.
    batchnorm : str
        How the model's BatchNorm layers enter the loss (``core.nets.norm``): "batch"
        normalises each block of ``norm_batch`` consecutive examples (the evaluation batches,
        fixed whatever the memory) by its own statistics; "recomputed" recomputes the running
        statistics from the first ``norm_batch`` training examples at every vector.

    Attributes
    ----------
    n_params : int
        P.
    strategy : str
        The evaluation strategy in use (``"auto"`` resolved).
    device : torch.device
        Where the data live and the networks are evaluated.
    bytes_per_example : int
        Activation bytes that one network saves for backward per example; sizes the blocks.
    value_bytes_per_example : int
        Bytes per network and example of an evaluation without gradients (at least the
        logits' ``LOGIT_COPIES`` times); sizes its speed blocks.
    """

    def __init__(
        self,
        model: nn.Module,
        data,
        *,
        l2: float = 1e-4,
        batch_size: int | None = 256,
        seed: int = 0,
        strategy: str = "auto",
        device="cpu",
        max_points: int | None = None,
        memory_budget: int | None = None,
        batchnorm: str = "batch",
        norm_batch: int = 256,
    ):
        if not (isinstance(l2, numbers.Real) and math.isfinite(l2) and l2 >= 0):
            raise ValueError(f"l2 must be a finite number >= 0, got {l2!r}")
        sizes = (("batch_size", batch_size), ("max_points", max_points))
        for name, v in (*sizes, ("memory_budget", memory_budget)):
            if v is not None and not (isinstance(v, int) and not isinstance(v, bool) and v > 0):
                raise ValueError(f"{name} must be a positive int or None, got {v!r}")
        self.device = resolve_device(device)
        self.model = copy.deepcopy(model).to(self.device).eval()
        self.arch = getattr(model, "arch", None)
        self.n_params = n_params(model)
        self.strategy = choose_strategy(strategy, self.model, self.device)
        self._auto = strategy == "auto"
        self.l2, self.batch_size, self.seed = float(l2), batch_size, seed
        self.max_points = max_points
        self.x_train, self.y_train = self._tensors(data, "train")
        self.x_test, self.y_test = self._tensors(data, "test")
        self.n_train = self.x_train.shape[0]
        self.norm_batch = norm_batch
        self.forward = (  # the model's BatchNorm layers, for every strategy but "fused"
            Forward(self.model, batchnorm, self.x_train[:norm_batch])
            if batchnorms(self.model)
            else None
        )
        self.memory_budget = memory_budget or default_memory_budget(self.device)
        self.bytes_per_example, logit_bytes = _bytes_per_example(self.model, self.x_train)
        self.value_bytes_per_example = max(self.bytes_per_example, LOGIT_COPIES * logit_bytes)
        self._perm: tuple[int, Tensor] | None = None  # (epoch, permutation) of the last call
        log.debug("objective %s on %s: strategy %s", self.arch, self.device, self.strategy)

    def _tensors(self, data, split: str) -> tuple[Tensor, Tensor]:
        x = getattr(data, f"x_{split}")
        ids = isinstance(x, Tensor) and not x.is_floating_point()  # text: character ids
        x = torch.as_tensor(x, dtype=torch.int64 if ids else torch.float32, device=self.device)
        y = torch.as_tensor(getattr(data, f"y_{split}"), dtype=torch.int64, device=self.device)
        if x.shape[0] != y.shape[0] or (split == "train" and x.shape[0] == 0):
            raise ValueError(
                f"data.x_{split} {tuple(x.shape)} and y_{split} {tuple(y.shape)} mismatch"
            )
        return x, y

    # -- evaluation -------------------------------------------------------------------------

    def strategy_for(self, m: int) -> str:
        """The strategy a block of ``m`` networks runs with: ``"auto"`` takes the loop for one
        network (the plain module call has the least overhead), else ``self.strategy``."""
        return "loop" if self._auto and m == 1 else self.strategy

    def logits(self, thetas: Tensor, x: Tensor) -> Tensor:
        """Logits (M, B, C) of the M networks on x (B, *input_shape), one block, no chunking;
        (M, B, L, C) for text, whose x (B, L) holds character ids."""
        x, model = (x.to(thetas.dtype) if x.is_floating_point() else x), self.model
        strategy = self.strategy_for(thetas.shape[0])
        if strategy == "fused":
            return model.forward_many(unflatten(thetas, model), x)

        def one(theta: Tensor) -> Tensor:  # (P,) -> (B, C)
            if self.forward is not None:
                return self.forward(unflatten(theta, model), x)
            return functional_call(model, unflatten(theta, model), (x,))

        if strategy == "vmap":
            return vmap(one)(thetas)
        return torch.stack([one(theta) for theta in thetas])

    def _hand_grad(self, m: int) -> bool:
        """Does a block of ``m`` networks take the model's hand-written gradient?"""
        fast = callable(getattr(self.model, "ce_and_grad_many", None))
        return fast and self.strategy_for(m) == "fused"

    def _ce_sum(self, thetas: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """Summed cross-entropy (M,) of the M networks over the examples x, y."""
        if thetas.requires_grad and torch.is_grad_enabled() and self._hand_grad(len(thetas)):
            return HandGradCE.apply(thetas, self.model, x.to(thetas.dtype), y)
        return self._logits_ce(thetas, x, y)

    def _logits_ce(self, thetas: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """``_ce_sum`` through the logits, for autograd (what ``compiled()`` compiles); for text
        an example's cross-entropy is the mean over its positions."""
        logits = self.logits(thetas, x)
        if logits.dim() == 4:  # (M, B, L, C): text
            ce = F.cross_entropy(
                logits.permute(0, 3, 1, 2), y.expand(len(logits), -1, -1), reduction="none"
            )
            return ce.mean(-1).sum(1)
        logits = logits.transpose(1, 2)  # (M, C, B): no copy for the MLP
        return F.cross_entropy(logits, y.expand(logits.shape[0], -1), reduction="none").sum(1)

    def _blocks(
        self, m: int, b: int, budget: int | None = None, per_example: int | None = None
    ) -> tuple[int, int]:
        """(vectors, examples) per block so that a block's activations (``per_example``
        bytes, default ``bytes_per_example``) fit ``budget`` bytes (the memory budget when
        None)."""
        budget = min(budget or self.memory_budget, self.memory_budget)
        per_pair = ACTIVATION_FACTOR * (per_example or self.bytes_per_example)
        if self.forward is not None and self.forward.mode == "batch":
            b = min(b, self.norm_batch)  # BatchNorm's evaluation batches, whatever the memory
            return min(m, self.max_points or max(1, budget // (per_pair * b))), b
        m_block = min(m, self.max_points or max(1, budget // (per_pair * b)))
        b_block = min(b, max(1, budget // (per_pair * m_block)))
        return m_block, b_block

    @functools.cached_property
    def _speed_budget(self) -> int:
        return cpu_block_bytes() if self.device.type == "cpu" else self.memory_budget

    def block_size(self, m: int, b: int | None = None) -> int:
        """Vectors per call for speed: a block of activations on ``b`` examples (default:
        the train set) within half the CPU's last-level cache, or the memory budget on a GPU,
        and at least ``MIN_BLOCK_ROWS`` network-examples where the memory budget allows.
        ``core.engine.evaluate`` uses it as the chunk when none is given."""
        return self._speed_block(m, b, self.bytes_per_example)

    def value_block_size(self, m: int, b: int | None = None) -> int:
        """``block_size`` for evaluations without gradients, whose blocks hold the logits and
        the loss's temporaries (``value_bytes_per_example``); ``core.engine.evaluate.values_of``
        asks for it."""
        return self._speed_block(m, b, self.value_bytes_per_example)

    def _speed_block(self, m: int, b: int | None, per_example: int) -> int:
        b = self.n_train if b is None else b
        fast = self._blocks(m, b, self._speed_budget, per_example)[0]
        floor = min(m, -(-MIN_BLOCK_ROWS // b), self._blocks(m, b)[0])  # within the budget
        return max(fast, floor)

    def _check(self, thetas: Tensor) -> None:
        ok = isinstance(thetas, Tensor) and thetas.dim() == 2
        if not (ok and thetas.shape[1] == self.n_params):
            shape = tuple(thetas.shape) if isinstance(thetas, Tensor) else type(thetas).__name__
            raise ValueError(f"thetas must be (M, {self.n_params}), got {shape}")
        if thetas.device != self.device:
            raise ValueError(f"thetas on {thetas.device}, objective on {self.device}")

    def _loss(self, thetas: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """Mean cross-entropy over (x, y) + the l2 term, (M,), blockwise."""
        self._check(thetas)
        (m, _), b = thetas.shape, x.shape[0]
        m_block, b_block = self._blocks(m, b)
        grad = torch.is_grad_enabled() and thetas.requires_grad
        # checkpoint each block, unless the gradient is computed by hand in the forward pass
        # (its activations are freed at once)
        blockwise = grad and (m_block, b_block) != (m, b) and not self._hand_grad(m_block)
        rows = []
        for i in range(0, m, m_block):
            th, total = thetas[i : i + m_block], 0
            for j in range(0, b, b_block):
                xs, ys = x[j : j + b_block], y[j : j + b_block]
                if blockwise:
                    total = total + checkpoint(self._ce_sum, th, xs, ys, use_reentrant=False)
                else:
                    total = total + self._ce_sum(th, xs, ys)
            rows.append(total / b)
        return torch.cat(rows) + 0.5 * self.l2 * thetas.pow(2).sum(1)

    def _values_and_grads(self, thetas: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """``_loss`` (M,) on (x, y) and its gradient (M, P), detached. Where ``_loss``'s
        blocks take the hand-written gradient (the fused MLP), straight from it:
        the same blocks, the mean and the l2 term's gradient by hand, and no autograd graph
        around the blocks (no engine, no zero-filled gradients of the slices); else by
        autograd of ``_loss``.
        """
        self._check(thetas)
        (m, _), b = thetas.shape, x.shape[0]
        m_block, b_block = self._blocks(m, b)
        if not self._hand_grad(m_block):
            return autograd_values_and_grads(lambda t: self._loss(t, x, y), thetas)
        thetas, x = thetas.detach(), x.to(thetas.dtype)
        # the arithmetic of autograd of _loss, so the numbers are the same to the bit: each
        # block's gradient times 1/b (in the dtype), summed, then the l2 term's gradient
        inv_b = torch.ones((), dtype=thetas.dtype, device=thetas.device) / b
        values, grads = [], []
        for i in range(0, m, m_block):
            th = thetas[i : i + m_block]
            if not self._hand_grad(len(th)):  # a last block of one network: the loop
                v, g = autograd_values_and_grads(lambda t: self._loss(t, x, y), th)
            else:
                ce, g = None, None
                for j in range(0, b, b_block):
                    c, gj = hand_ce_and_grad(self.model, th, x[j : j + b_block], y[j : j + b_block])
                    gj.mul_(inv_b)
                    ce, g = (c, gj) if g is None else (ce + c, g.add_(gj))
                v = ce / b + 0.5 * self.l2 * th.pow(2).sum(1)
                g.add_(th * self.l2)
            values.append(v)
            grads.append(g)
        return tuple(t[0] if len(t) == 1 else torch.cat(t) for t in (values, grads))

    def __call__(self, thetas: Tensor) -> Tensor:
        """Objective (M,) on the whole train set: mean cross-entropy + l2 * ||theta||^2 / 2."""
        return self._loss(thetas, self.x_train, self.y_train)

    def values_and_grads(self, thetas: Tensor) -> tuple[Tensor, Tensor]:
        """Objective values (M,) and gradients (M, P) on the whole train set, one call of
        ``core.engine.evaluate.values_and_grads`` (which chunks and calls this)."""
        return self._values_and_grads(thetas, self.x_train, self.y_train)

    # -- minibatches ------------------------------------------------------------------------

    @property
    def steps_per_epoch(self) -> int:
        """Minibatches per pass over the train set (the last one may be smaller)."""
        return math.ceil(self.n_train / (self.batch_size or self.n_train))

    def batch_indices(self, step: int) -> Tensor:
        """Train-set indices of minibatch ``step``: a slice of epoch ``step // steps_per_epoch``."""
        if not (isinstance(step, numbers.Integral) and not isinstance(step, bool) and step >= 0):
            raise ValueError(f"step must be an int >= 0, got {step!r}")
        epoch, k = divmod(int(step), self.steps_per_epoch)
        if self._perm is None or self._perm[0] != epoch:
            gen = torch.Generator().manual_seed(self.seed + epoch)
            self._perm = (epoch, torch.randperm(self.n_train, generator=gen).to(self.device))
        size = self.batch_size or self.n_train
        return self._perm[1][k * size : (k + 1) * size]

    def minibatch(self, step: int) -> OnExamples:
        """The objective on minibatch ``step`` (same examples for all M vectors) + l2 term."""
        idx = self.batch_indices(step)
        return OnExamples(self, self.x_train[idx], self.y_train[idx])

    # -- reporting --------------------------------------------------------------------------

    def evaluate(self, thetas: Tensor, split: str = "train") -> dict[str, np.ndarray]:
        """Loss and accuracy of the M networks on a split, without gradients.

        Returns
        -------
        dict of (M,) float64 arrays
            ``loss`` mean cross-entropy (no l2), ``l2`` the penalty ``l2 * ||theta||^2 / 2``,
            ``accuracy`` and ``error = 1 - accuracy``.
        """
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        self._check(thetas)
        x, y = (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)
        (m, _), b = thetas.shape, x.shape[0]
        if b == 0:
            raise ValueError(f"split {split!r} has no examples")
        m_block, b_block = self._blocks(m, b, self._speed_budget, self.value_bytes_per_example)
        ce, correct = torch.zeros(m, dtype=torch.float64), torch.zeros(m, dtype=torch.float64)
        with torch.no_grad():
            for i in range(0, m, m_block):
                for j in range(0, b, b_block):
                    logits = self.logits(thetas[i : i + m_block], x[j : j + b_block])  # (m, b, C)
                    ys = y[j : j + b_block]
                    if logits.dim() == 4:  # text: per example, the mean over its positions
                        ce_b, hit = _sequence_rows(logits, ys)
                        ce[i : i + m_block] += ce_b.sum(1).double().cpu()
                        correct[i : i + m_block] += hit.sum(1).double().cpu()
                        continue
                    rows = F.cross_entropy(
                        logits.flatten(0, 1), ys.repeat(logits.shape[0]), reduction="none"
                    )
                    ce[i : i + m_block] += rows.view(logits.shape[:2]).sum(1).double().cpu()
                    correct[i : i + m_block] += (logits.argmax(-1) == ys).sum(1).double().cpu()
            penalty = (0.5 * self.l2 * thetas.double().pow(2).sum(1)).cpu()
        acc = (correct / b).numpy()
        return {
            "loss": (ce / b).numpy(),
            "l2": penalty.numpy(),
            "accuracy": acc,
            "error": 1.0 - acc,
        }

    def twice_differentiable(self) -> NetworkObjective:
        """A copy that evaluates through ``functional_call`` + ``vmap`` (no hand-written
        gradient), which ``torch.func`` differentiates twice: Hessian-vector products for
        ``core.engine.certify``. Same data, model and values."""
        twin = copy.copy(self)
        twin.strategy, twin._auto = "vmap", False
        return twin

    def compiled(self) -> NetworkObjective:
        """A copy whose loss runs through ``torch.compile`` (same data, model and options).

        What is compiled is the loss through the logits, which autograd differentiates; blocks
        that take the model's hand-written gradient (the fused MLP) run it eagerly: its
        in-place backward is not safe to compile (BENCHMARKS.md, GPU check). Values equal
        the eager ones to float32 rounding (tests/nets/test_objective.py, tests/nets/test_gpu.py).
        Building takes tens of seconds per input shape and gains nothing on a CPU, so it is
        meant for CUDA.
        """
        twin = copy.copy(self)
        twin._perm = None
        twin._logits_ce = torch.compile(self._logits_ce)
        return twin

    def init(self, m: int, seed: int) -> Tensor:
        """M default initializations (M, P) on the device (``core.nets.models.init_thetas``)."""
        return init_thetas(self.model, m, seed).to(self.device)


def _sequence_rows(logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """(m, b) cross-entropy and accuracy of each example, each a mean over its positions, from
    logits (m, b, L, C) and next characters y (b, L)."""
    yy = y.expand(len(logits), -1, -1)
    ce = F.cross_entropy(logits.permute(0, 3, 1, 2), yy, reduction="none")  # (m, b, L)
    return ce.mean(-1), (logits.argmax(-1) == yy).double().mean(-1)


class OnExamples:
    """A ``NetworkObjective`` on fixed examples (a minibatch): (M, P) -> (M,), with the
    ``block_size`` and ``value_block_size`` hints of ``core.engine.evaluate`` sized for those
    examples."""

    def __init__(self, owner: NetworkObjective, x: Tensor, y: Tensor):
        self.owner, self.x, self.y = owner, x, y

    def __call__(self, thetas: Tensor) -> Tensor:
        return self.owner._loss(thetas, self.x, self.y)

    def values_and_grads(self, thetas: Tensor) -> tuple[Tensor, Tensor]:
        return self.owner._values_and_grads(thetas, self.x, self.y)

    def block_size(self, m: int) -> int:
        return self.owner.block_size(m, self.x.shape[0])

    def value_block_size(self, m: int) -> int:
        return self.owner.value_block_size(m, self.x.shape[0])
