"""BatchNorm in a loss landscape: a network at given parameters as a pure function.

A landscape needs a loss that is a function of the parameters alone; BatchNorm's running
statistics are state. ``Forward(model, mode, x_stats)`` is ``(params, x) -> outputs`` with the
module in eval mode (no dropout) and every BatchNorm layer in one of two modes:

- ``"batch"``: each evaluation batch is normalised by its own statistics (train-mode
  BatchNorm, without updating any running statistics: the paper's choice). The loss then
  depends on how the examples are grouped into evaluation batches, which the caller fixes.
- ``"recomputed"``: eval-mode BatchNorm whose running statistics are recomputed at these
  parameters from the examples ``x_stats`` (mean and unbiased variance of each layer's input,
  what PyTorch's own recomputation from one batch gives; the practice of mode-connectivity
  work), differentiably, so the gradient is that of the reported loss.

Both trace under ``torch.func.vmap``: M networks at once, each with its own statistics.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.func import functional_call, replace_all_batch_norm_modules_

BATCHNORM_MODES = ("batch", "recomputed")


def batchnorms(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every BatchNorm layer of ``model``."""
    norm = nn.modules.batchnorm._BatchNorm
    return [(n, m) for n, m in model.named_modules() if isinstance(m, norm)]


@contextlib.contextmanager
def _hooked(model: nn.Module, hook, *, pre: bool) -> Iterator[None]:
    """``hook(name, module, args[, output])`` on every BatchNorm of ``model`` while inside."""
    handles = []
    for name, bn in batchnorms(model):
        reg = bn.register_forward_pre_hook if pre else bn.register_forward_hook
        handles.append(reg(functools.partial(hook, name)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


class Forward:
    """``model`` as ``(params, x) -> outputs`` in eval mode, BatchNorm per ``mode``."""

    def __init__(self, model: nn.Module, mode: str, x_stats: Tensor) -> None:
        if mode not in BATCHNORM_MODES:
            raise ValueError(f"batchnorm={mode!r}: must be one of {BATCHNORM_MODES}")
        self.mode, self.x_stats = mode, x_stats
        self.batched = copy.deepcopy(model).eval()  # BatchNorm on batch statistics
        replace_all_batch_norm_modules_(self.batched)
        self.has_norm = bool(batchnorms(model))

    def stats(self, params: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """BatchNorm name -> (mean, unbiased variance) of its input over ``x_stats``."""
        seen: dict[str, tuple[Tensor, Tensor]] = {}

        def record(name, _module, args):
            h = args[0]
            dims = [0, *range(2, h.dim())]
            seen[name] = (h.mean(dims), h.var(dims, unbiased=True))

        with _hooked(self.batched, record, pre=True):
            functional_call(self.batched, params, (self.x_stats,))
        return seen

    def __call__(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        if self.mode == "batch" or not self.has_norm:
            return functional_call(self.batched, params, (x,))
        stats = self.stats(params)

        def normalise(name, bn, args, _out):  # eval-mode BatchNorm, differentiable in stats
            h, (mean, var) = args[0], stats[name]
            shape = (1, -1, *[1] * (h.dim() - 2))
            z = (h - mean.view(shape)) / torch.sqrt(var.view(shape) + bn.eps)
            return z * bn.weight.view(shape) + bn.bias.view(shape) if bn.affine else z

        with _hooked(self.batched, normalise, pre=False):
            return functional_call(self.batched, params, (x,))
