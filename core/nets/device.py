"""Where and how big: the device, the memory budget, the CPU cache, and the evaluation
strategy for an architecture on a device (``AUTO_STRATEGY``, measured by ``bench/engine.py``).
"""

from __future__ import annotations

import glob
import os

import torch
from torch import nn

STRATEGIES = ("auto", "loop", "vmap", "fused")

# Fastest strategy per device kind and architecture for blocks of several networks (a block of
# one takes the loop), from bench/engine.py's tables and the GPU check in BENCHMARKS.md.
# "cpu1": one intra-op thread, where per-network convolutions keep up with grouped ones.
AUTO_STRATEGY = {
    "cpu": {"mlp": "fused", "cnn": "fused", "resnet": "fused", "transformer": "fused"},
    "cpu1": {"mlp": "fused", "cnn": "loop", "resnet": "loop", "transformer": "fused"},
    "cuda": {"mlp": "fused", "cnn": "fused", "resnet": "fused", "transformer": "fused"},
}
# Architectures without forward_many (BatchNorm through core.nets.norm): vmap on a GPU, where
# batching pays; the loop on a CPU, as for the other convolutional networks there.
UNFUSED_STRATEGY = {"cpu": "loop", "cpu1": "loop", "cuda": "vmap"}


def resolve_device(device) -> torch.device:
    """``"auto"`` -> cuda if available else cpu; anything else through ``torch.device``;
    ValueError for CUDA on a machine without it."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but CUDA is not available on this machine")
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())  # as tensors report it
    return device


def default_memory_budget(device: torch.device) -> int:
    """Bytes of activations allowed per block: half the free GPU memory, or a quarter of RAM."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] // 2
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4


def cpu_block_bytes() -> int:
    """Half the CPU's last-level cache, in bytes (from sysfs; 16 MiB where unknown)."""
    sizes = []
    for f in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*/size"):
        try:
            text = open(f).read().strip()
        except OSError:
            continue
        unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        sizes += [int(digits) * unit] if digits.isdigit() else []
    return max(sizes) // 2 if sizes else 16 << 20


def device_kind(device: torch.device) -> str:
    """The ``AUTO_STRATEGY`` key: "cuda", "cpu", or "cpu1" for a CPU with one intra-op thread."""
    if device.type == "cpu":
        return "cpu1" if torch.get_num_threads() == 1 else "cpu"
    return device.type


def choose_strategy(strategy: str, model: nn.Module, device: torch.device) -> str:
    """The evaluation strategy that ``strategy`` names for this model and device."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    fusable = callable(getattr(model, "forward_many", None))
    if strategy == "fused" and not fusable:
        raise ValueError(
            f"strategy 'fused' needs a model with forward_many (core.nets.models), "
            f"got {type(model).__name__}"
        )
    if strategy != "auto":
        return strategy
    kind = device_kind(device)
    if not fusable:
        return UNFUSED_STRATEGY.get(kind, "loop")
    return AUTO_STRATEGY.get(kind, {}).get(getattr(model, "arch", None), "loop")
