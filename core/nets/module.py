"""Any ``nn.Module`` as a batched objective, and its barcode: ``landscape_of_model``.

``ModuleObjective(model, x, y)`` maps M flat parameter vectors (M, P), in the layout of
``model.named_parameters()``, to the mean loss of ``model`` on ``(x, y)`` plus
``l2 * ||theta||^2 / 2``, through ``torch.func.functional_call`` under ``torch.func.vmap``
(or a loop over the M vectors where vmap cannot trace the module). Buffers are the model's
own, shared by the M networks, and the module always runs in eval mode (no dropout); its
BatchNorm layers follow ``batchnorm`` (``core.nets.norm``): each evaluation batch's own
statistics ("batch"; the evaluation batches are the consecutive blocks of ``batch_size``
examples, always the same ones), or running statistics recomputed at every parameter vector
from the first ``stats_examples`` examples ("recomputed"). Both are equal for the batched and
the looped evaluation (tests/nets/test_module.py).
"""

from __future__ import annotations

import copy
import importlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor, nn
from torch.func import vmap

from core.engine.landscape import Landscape, landscape_of
from core.nets.device import resolve_device
from core.nets.models import flatten, init_thetas, n_params, unflatten
from core.nets.norm import BATCHNORM_MODES, Forward

log = logging.getLogger(__name__)

MODULE_STRATEGIES = ("auto", "vmap", "loop")
MAX_VALUES = 200_000_000  # refuse parameters x minima beyond this (800 MB of float32)
Loss = Callable[[Tensor, Tensor], Tensor]


def check_fits(model: nn.Module, x: Tensor, y: Tensor, loss: Loss | None = None) -> None:
    """ValueError naming the shapes unless ``loss(model(x[:2]), y[:2])`` runs."""
    try:
        with torch.no_grad():
            (loss or F.cross_entropy)(model(x[:2]), y[:2])
    except Exception as exc:  # whatever the module or the loss raises on these examples
        why = " ".join(str(exc).split())[:200]
        raise ValueError(
            f"{type(model).__name__} cannot evaluate the data (inputs {tuple(x.shape[1:])}, "
            f"targets {tuple(y.shape[1:])}): {why}"
        ) from None


class ModuleObjective:
    """Loss of any ``nn.Module`` on fixed examples, for M parameter vectors at once.

    Parameters
    ----------
    model : nn.Module
        Its current parameters define the layout (and ``init`` redraws them); it is copied.
    x, y : Tensor
        (B, ...) inputs and (B, ...) targets of ``loss``.
    loss : callable, optional
        ``loss(outputs, targets)`` -> the mean loss of a batch; cross-entropy by default.
    l2 : float
        Weight of ``||theta||^2 / 2``.
    batch_size : int, optional
        Examples per evaluation batch (all by default); with ``batchnorm="batch"`` also the
        batches whose statistics normalise them.
    batchnorm : str
        "batch" or "recomputed", see the module docstring.
    stats_examples : int
        Training examples that the "recomputed" statistics come from.
    strategy : str
        "vmap", "loop", or "auto" (vmap where it traces the module, else the loop).
    """

    def __init__(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        *,
        loss: Loss | None = None,
        l2: float = 1e-4,
        batch_size: int | None = None,
        batchnorm: str = "batch",
        stats_examples: int = 512,
        strategy: str = "auto",
        device: str | torch.device = "cpu",
    ) -> None:
        if strategy not in MODULE_STRATEGIES:
            raise ValueError(f"strategy={strategy!r}: must be one of {MODULE_STRATEGIES}")
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(
                f"x and y must hold the same number (> 0) of examples: {len(x)}, {len(y)}"
            )
        for name, v in (("batch_size", batch_size), ("stats_examples", stats_examples)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{name}={v!r}: must be a positive integer")
        self.device = resolve_device(device)
        self.model = copy.deepcopy(model).to(self.device).eval()
        self.n_params = n_params(self.model)
        self.x, self.y = x.to(self.device), y.to(self.device)
        self.forward = Forward(self.model, batchnorm, self.x[:stats_examples])
        self.loss = loss or F.cross_entropy
        self.l2, self.batchnorm = float(l2), batchnorm
        self.batch_size = min(batch_size or len(x), len(x))
        check_fits(self.forward.batched, self.x, self.y, self.loss)
        self.strategy = self._choose(strategy)

    # -- one network, as a pure function of its flat parameters --------------------------------

    def _one(self, theta: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """Mean loss of one network (P,) on one evaluation batch, without the l2 term."""
        return self.loss(self.forward(unflatten(theta, self.model), x), y)

    def _batches(self) -> list[tuple[Tensor, Tensor]]:
        b = self.batch_size
        return [(self.x[i : i + b], self.y[i : i + b]) for i in range(0, len(self.x), b)]

    # -- M networks ---------------------------------------------------------------------------

    def _on(self, thetas: Tensor, x: Tensor, y: Tensor, strategy: str) -> Tensor:
        if strategy == "vmap":
            return vmap(self._one, in_dims=(0, None, None), randomness="error")(thetas, x, y)
        return torch.stack([self._one(t, x, y) for t in thetas])

    def _choose(self, strategy: str) -> str:
        if strategy != "auto":
            return strategy
        probe = flatten(self.model).to(self.device)[None].expand(2, -1)
        try:
            self._on(probe, self.x[:2], self.y[:2], "vmap")
        except Exception as exc:  # any module vmap cannot trace: the loop always works
            log.info(
                "vmap cannot evaluate %s (%s); looping over the networks",
                type(self.model).__name__,
                exc,
            )
            return "loop"
        return "vmap"

    def evaluate_with(self, thetas: Tensor, strategy: str) -> Tensor:
        """Values (M,) by ``strategy`` ("vmap" or "loop"): the same numbers either way."""
        if thetas.ndim != 2 or thetas.shape[1] != self.n_params:
            shape = tuple(thetas.shape)
            raise ValueError(f"thetas must be (M, {self.n_params}), got {shape}")
        total = sum(len(x) * self._on(thetas, x, y, strategy) for x, y in self._batches())
        return total / len(self.x) + 0.5 * self.l2 * thetas.pow(2).sum(1)

    def __call__(self, thetas: Tensor) -> Tensor:
        return self.evaluate_with(thetas, self.strategy)

    def minibatch(self, step: int, size: int, seed: int = 0) -> Callable[[Tensor], Tensor]:
        """The objective on a seeded random minibatch of ``size`` examples for ``step``."""
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        idx = torch.randperm(len(self.x), generator=g)[:size].to(self.device)
        sub = copy.copy(self)
        sub.x, sub.y, sub.batch_size = self.x[idx], self.y[idx], min(size, self.batch_size)
        return sub

    def init(self, m: int, seed: int) -> Tensor:
        """M default initialisations (M, P) of the model's layers, on the device."""
        return init_thetas(self.model, m, seed).to(self.device)


# ---------------------------------------------------------------------------------------------
# Your model and its checkpoints


def model_from_factory(spec: str, n_classes: int) -> nn.Module:
    """The module that ``spec`` names: ``torchvision:NAME`` (``torchvision.models.NAME`` with
    ``n_classes`` outputs) or ``package.module:NAME`` (``NAME()``, or ``NAME`` itself if it is
    a module); ValueError naming what is wrong."""
    where, sep, name = spec.partition(":")
    if not sep or not where or not name:
        raise ValueError(f"model {spec!r}: must be torchvision:NAME or package.module:FACTORY")
    if where == "torchvision":
        import torchvision

        factory = getattr(torchvision.models, name, None)
        if not callable(factory):
            raise ValueError(f"model {spec!r}: torchvision.models has no model {name!r}")
        return factory(num_classes=n_classes)
    try:
        module = importlib.import_module(where)
    except ImportError as exc:
        raise ValueError(f"model {spec!r}: cannot import {where!r} ({exc})") from None
    obj = getattr(module, name, None)
    if obj is None:
        raise ValueError(f"model {spec!r}: {where} has no {name!r}")
    model = obj if isinstance(obj, nn.Module) else obj() if callable(obj) else None
    if not isinstance(model, nn.Module):
        raise ValueError(f"model {spec!r}: {name} did not give a torch.nn.Module")
    return model


def load_checkpoint(path: str | Path, model: nn.Module) -> Tensor:
    """The flat parameters (P,) stored in a state-dict file: safetensors, or a ``torch.save``
    file read with ``weights_only=True`` (nothing is unpickled). ValueError naming the file
    for a missing, unreadable or pickle-only file and for keys or shapes that do not match."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} is missing")
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # each format raises its own errors for unreadable content
        why = str(exc).splitlines()[0][:200]
        raise ValueError(
            f"checkpoint {path} cannot be read as a state dict without unpickling code ({why})"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"checkpoint {path} is not a state dict of tensors")
    names = dict(model.named_parameters())
    missing = [n for n in names if n not in state]
    if missing:
        raise ValueError(
            f"checkpoint {path} lacks {len(missing)} parameter(s), first {missing[0]!r}"
        )
    known = set(names) | {n for n, _ in model.named_buffers()}
    extra = sorted(set(state) - known)
    if extra:
        raise ValueError(f"checkpoint {path} has key(s) the model does not, first {extra[0]!r}")
    for n, p in names.items():
        if tuple(state[n].shape) != tuple(p.shape):
            raise ValueError(
                f"checkpoint {path}: {n} has shape {tuple(state[n].shape)}, "
                f"the model's is {tuple(p.shape)}"
            )
    return torch.cat([state[n].detach().reshape(-1).float() for n in names])


def checkpoint_files(checkpoints) -> list[Path]:
    """The state-dict files of a folder (``.pt``, ``.pth``, ``.safetensors``, by name), of one
    file, or of a list of files."""
    if isinstance(checkpoints, str | Path) and Path(checkpoints).is_dir():
        files = sorted(
            p for p in Path(checkpoints).iterdir() if p.suffix in (".pt", ".pth", ".safetensors")
        )
        if not files:
            raise ValueError(
                f"checkpoints folder {checkpoints} holds no .pt, .pth or .safetensors file"
            )
        return files
    if isinstance(checkpoints, str | Path):
        return [Path(checkpoints)]
    return [Path(c) for c in checkpoints]


# ---------------------------------------------------------------------------------------------
# The barcode of a model


def _tensors(data) -> tuple[Tensor, Tensor]:
    """(x, y) from a pair of tensors or from a map-style torch Dataset of (input, target)."""
    if (
        isinstance(data, tuple | list)
        and len(data) == 2
        and all(isinstance(t, Tensor) for t in data)
    ):
        return data[0], data[1]
    if isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__"):
        items = [data[i] for i in range(len(data))]
        xs, ys = zip(*items, strict=True)
        return torch.stack([torch.as_tensor(v) for v in xs]), torch.as_tensor(np.asarray(ys))
    raise ValueError(f"data must be (x, y) tensors or a torch Dataset, got {type(data).__name__}")


def landscape_of_model(
    model: nn.Module,
    data,
    *,
    loss: Loss | None = None,
    checkpoints: str | Path | Sequence[str | Path] | None = None,
    minima: int = 8,
    seed: int = 0,
    batchnorm: str = "batch",
    l2: float = 1e-4,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    train: dict | None = None,
    paths: dict | None = None,
) -> Landscape:
    """Minima, min-max paths and the H0 barcode of ``model``'s loss on ``data``.

    Parameters
    ----------
    model : nn.Module
        Its parameters define the layout; buffers are kept (see ``ModuleObjective``).
    data : (x, y) tensors or a torch Dataset
        The examples whose mean loss is the landscape.
    loss : callable, optional
        ``loss(outputs, targets)``, a batch's mean; cross-entropy by default.
    checkpoints : folder, file or list of files, optional
        State dicts (``.pt``/``.pth`` read with ``weights_only=True``, or ``.safetensors``)
        used as the minima: each is refined to the gradient tolerance first, and one that
        is not a minimum is reported (``minima.status``). Without them, ``minima`` networks
        are trained from the model's default initialisation (seeded by ``seed``).
    batchnorm : str
        "batch" or "recomputed" (``core.nets.module``).
    train, paths : dict, optional
        Fields of ``MinimaOptions`` and ``PathOptions`` (``core.engine.options``).

    Returns
    -------
    Landscape
        ``.minima``, ``.paths`` and ``.barcode``.
    """
    x, y = _tensors(data)
    obj = ModuleObjective(
        model, x, y, loss=loss, l2=l2, batch_size=batch_size, batchnorm=batchnorm, device=device
    )
    if checkpoints is not None:
        files = checkpoint_files(checkpoints)
        starts = torch.stack([load_checkpoint(f, model) for f in files]).to(obj.device)
    else:
        if isinstance(minima, bool) or not isinstance(minima, int) or minima < 2:
            raise ValueError(f"minima={minima!r}: must be an integer >= 2")
        starts = obj.init(minima, seed)
    m, p = starts.shape
    if m * p > MAX_VALUES:
        raise ValueError(
            f"{p:,} parameters x {m} minima = {m * p:,} values exceeds the limit of "
            f"{MAX_VALUES:,}; use fewer minima or a smaller model"
        )
    land = landscape_of(obj, starts, minima=train, paths=paths, explore=0)
    if checkpoints is not None:
        for k, st in enumerate(land.minima.status):
            if st != "minimum":
                ends = [str(files[i]) for i in np.flatnonzero(land.minima.start_of == k)]
                log.warning("checkpoint(s) %s: not a minimum after refinement (%s)", ends, st)
    return land


__all__ = [
    "BATCHNORM_MODES",
    "ModuleObjective",
    "landscape_of_model",
    "load_checkpoint",
]
