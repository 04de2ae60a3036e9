"""Named sweeps: the paper's settings, and the small CPU reproduction of ``docs/REPRODUCTION.md``.

``python -m core sweep --preset NAME`` runs one; ``python -m core run --preset NAME`` runs the
first configuration of it. Every preset states its cost (``estimate_cost``): parameters per
network, objective evaluations per step, and the floating-point work of the whole sweep,
turned into GPU minutes at an assumed sustained rate (``GPU_FLOPS``). The estimate counts

- training: minima x steps x batch examples (forward + backward = 3 forward passes), plus a
  full-data gradient check of every start each 50 steps;
- paths: pairs x interior points x steps x examples (3 forward passes): the first
  ``noisy_steps`` on minibatches, the rest on the run's whole training subset; a dense
  evaluation of every path each ``check_every`` steps at ``check_density`` points per
  interval, the final evaluation (densities 8 and 16) and the certificate (at most
  ``LANCZOS_STEPS`` Hessian-vector products per pair, ~5 forward passes each);
- forward FLOPs per example from ``torch.utils.flop_counter`` on the ``meta`` device.

It is an upper bound in steps: a pair leaves the batch when it converges or meets no barrier
(on digits, MLP 32x2, the 7 pairs to the lowest minimum took 75-175 of 3000 steps, and
the other 21 were joined through it with no steps), and it ignores the time the
GPU waits for Python. The paper's settings were adapted as the authors' code suggests
(``PAPER.md``): 8 minima from different seeds, two learning-rate regimes, L2 1e-5 (fully
connected) and 5e-5 (CNN), minibatch 256; the landscape (and every saddle) is measured on a
fixed training subset of 10,000 examples, as the authors evaluated saddles on a subset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from core.engine.certify import LANCZOS_STEPS
from core.nets.data import TEXT_DATASETS
from core.nets.models import build_model, n_params
from core.runs.config import DataConfig, ModelConfig, PathConfig, RunConfig, TrainConfig
from core.runs.sweep import SweepSpec, expand

__all__ = ["GPU_FLOPS", "PRESETS", "Preset", "estimate_cost", "get_preset"]

GPU_FLOPS = 10e12  # assumed sustained FLOP/s of the batched fp32 objective on one GPU

# dataset -> (input shape, classes, training examples in the full split)
DATASET_SHAPES = {
    "digits": ((1, 8, 8), 10, 1437),
    "mnist1d": ((1, 40), 10, 4000),
    "mnist": ((1, 28, 28), 10, 60000),
    "fashion_mnist": ((1, 28, 28), 10, 60000),
    "cifar10": ((3, 32, 32), 10, 50000),
    "cifar100": ((3, 32, 32), 100, 50000),
    "svhn": ((3, 32, 32), 10, 73257),
    "pydoc": ((32,), 103, 12681),  # the shape is (data.context,)
}


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    specs: tuple[SweepSpec, ...]
    device: str = "gpu"  # what it is meant for: "gpu" or "cpu"

    @property
    def first(self) -> RunConfig:
        return expand(self.specs[0])[0]


def _paper(dataset: str, arch: str, l2: float, widths, depths, width: int, depth: int):
    base = RunConfig(
        data=DataConfig(name=dataset, n_train=10000, n_test=10000 if dataset != "svhn" else None),
        model=ModelConfig(arch=arch, width=width, depth=depth),
        train=TrainConfig(
            minima=8,
            regime="anneal",
            lr=1e-2,
            lr_final=1e-4,
            steps=20000,
            batch_size=256,
            l2=l2,
            grad_tol=1e-3,
        ),
        paths=PathConfig(
            pairs="all", n_points=10, max_points=16, steps=1000, batch_size=256, noisy_steps=200
        ),
        device="auto",
    )
    seeds = (0, 1, 2)
    specs = []
    if widths:
        specs.append(SweepSpec(base=base, widths=widths, depths=(depth,), seeds=seeds))
    if depths:
        specs.append(SweepSpec(base=base, widths=(width,), depths=depths, seeds=seeds))
    specs.append(SweepSpec(base=base, regimes=("anneal", "constant:0.0001"), seeds=seeds))
    return tuple(specs)


def _paper_resnet9(dataset: str) -> tuple[SweepSpec, ...]:
    """The paper's own experiment: ResNet9 with BatchNorm in batch-statistics mode, SGD with
    momentum 0.9 on minibatches of 256, 8 minima, both regimes (annealed from 0.05, constant
    0.001), every one of the 28 pairs, on a 1/20 subset of the training set."""
    n_train = {"cifar10": 2500, "svhn": 3663}[dataset]
    base = RunConfig(
        data=DataConfig(name=dataset, n_train=n_train, n_test=2000),
        model=ModelConfig(arch="resnet9", width=16, depth=1, batchnorm="batch", norm_batch=256),
        train=TrainConfig(
            minima=8,
            optimizer="momentum",
            regime="anneal",
            lr=5e-2,
            lr_final=1e-4,
            steps=4000,
            batch_size=256,
            l2=5e-5,
            grad_tol=1e-3,
        ),
        paths=PathConfig(
            pairs="all", n_points=10, max_points=16, steps=1000, batch_size=256, noisy_steps=200
        ),
        device="auto",
    )
    return (SweepSpec(base=base, regimes=("anneal", "constant:0.001")),)


def _cpu_base(dataset: str) -> RunConfig:
    return RunConfig(
        data=DataConfig(name=dataset, n_train=300),
        model=ModelConfig(arch="mlp", width=8, depth=1),
        train=TrainConfig(
            minima=5, regime="anneal", lr=0.02, lr_final=1e-4, steps=1500, l2=1e-4, grad_tol=1e-3
        ),
        paths=PathConfig(pairs="all", n_points=6, max_points=12, steps=800),
        device="cpu",
    )


def _cpu(dataset: str) -> tuple[SweepSpec, ...]:
    """The grid of docs/REPRODUCTION.md, sized for a shared 2-core CPU and about an hour and a half.

    Smaller than the paper's in every direction, all stated in the report: 300 training
    examples, 5 minima (10 pairs), paths of 6 to 12 points on the full 300 examples, 3 seeds.
    """
    base = _cpu_base(dataset)
    deep = base.replace(paths={"steps": 1500})
    seeds = (0, 1, 2)
    widths = (4, 8, 16, 32, 64, 128) if dataset == "digits" else (8, 32, 128)
    return (
        SweepSpec(base=base, widths=widths, depths=(1,), seeds=seeds),
        SweepSpec(base=deep, widths=(8,), depths=(1, 2, 3, 4), seeds=seeds),
        SweepSpec(base=deep.replace(model={"arch": "cnn"}), depths=(1, 2, 3), seeds=seeds),
        SweepSpec(base=base, regimes=("anneal", "constant:0.001"), seeds=seeds),
    )


def _resolution() -> tuple[SweepSpec, ...]:
    """Points of cpu-digits with longer, finer paths (seed 0): widths 4, 8, 16 at depth 1, and
    depth 3 at width 16 (the prototype's depth observation) at the depth step size."""
    fine = {"n_points": 12, "max_points": 32, "steps": 2000}
    base = _cpu_base("digits").replace(paths=fine)
    return (
        SweepSpec(base=base, widths=(4, 8, 16)),
        SweepSpec(base=base, widths=(16,), depths=(3,)),
    )


def _tiny() -> tuple[SweepSpec, ...]:
    base = RunConfig(
        data=DataConfig(name="digits", n_train=200, n_test=100),
        model=ModelConfig(arch="mlp", width=4, depth=1),
        train=TrainConfig(minima=3, steps=100, lr=0.05, lr_final=1e-3),
        paths=PathConfig(steps=60, n_points=6, max_points=8),
        device="cpu",
    )
    return (SweepSpec(base=base, widths=(4, 6), seeds=(0, 1)),)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "fc-mnist",
            "fully connected on MNIST: widths 32-256 at depth 2, depths 1-4 at "
            "width 64, both regimes; 3 seeds",
            _paper("mnist", "mlp", 1e-5, (32, 64, 128, 256), (1, 2, 3, 4), 64, 2),
        ),
        Preset(
            "fc-fashion-mnist",
            "fully connected on Fashion-MNIST, as fc-mnist",
            _paper("fashion_mnist", "mlp", 1e-5, (32, 64, 128, 256), (1, 2, 3, 4), 64, 2),
        ),
        Preset(
            "cnn-cifar10",
            "the authors' CNN depth experiment on CIFAR10: 1-3 conv blocks of "
            "32 channels, both regimes; 3 seeds",
            _paper("cifar10", "cnn", 5e-5, (), (1, 2, 3), 32, 1),
        ),
        Preset(
            "cnn-svhn",
            "CNN on SVHN, as cnn-cifar10",
            _paper("svhn", "cnn", 5e-5, (), (1, 2, 3), 32, 1),
        ),
        Preset(
            "resnet-cifar10",
            "ResNet-like on CIFAR10: widths 8-32 at 2 residual blocks, 1-3 "
            "blocks at width 16, both regimes; 3 seeds",
            _paper("cifar10", "resnet", 5e-5, (8, 16, 32), (1, 2, 3), 16, 2),
        ),
        Preset(
            "resnet-svhn",
            "ResNet-like on SVHN, as resnet-cifar10",
            _paper("svhn", "resnet", 5e-5, (8, 16, 32), (1, 2, 3), 16, 2),
        ),
        Preset(
            "paper-resnet9-cifar10",
            "the paper's setting: ResNet9 (BatchNorm, batch statistics) on 1/20 of CIFAR10, "
            "8 minima, all 28 pairs, both regimes",
            _paper_resnet9("cifar10"),
        ),
        Preset(
            "paper-resnet9-svhn",
            "the paper's setting on 1/20 of SVHN, as paper-resnet9-cifar10",
            _paper_resnet9("svhn"),
        ),
        Preset(
            "cpu-reproduction",
            "docs/REPRODUCTION.md: cpu-digits then cpu-mnist1d (measured: 75 runs, 83 "
            "minutes of run time on a shared 2-core CPU, OMP_NUM_THREADS=1; MNIST-1D CNNs of "
            "depth 2-3 take half of it)",
            _cpu("digits") + _cpu("mnist1d"),
            "cpu",
        ),
        Preset(
            "cpu-digits",
            "digits: MLP widths 4-128 at depth 1, depths 1-4 at width 8, CNN "
            "depths 1-3, both regimes; 3 seeds",
            _cpu("digits"),
            "cpu",
        ),
        Preset(
            "cpu-mnist1d",
            "MNIST-1D: MLP widths 8, 32, 128 at depth 1, depths 1-4 at width "
            "8, CNN depths 1-3, both regimes; 3 seeds",
            _cpu("mnist1d"),
            "cpu",
        ),
        Preset(
            "cpu-resolution",
            "digits MLP widths 4, 8, 16 at depth 1 and depth 3 at width 16, "
            "seed 0, paths of 12-32 points and 2000 steps: is the TO-score's plateau in "
            "cpu-digits the landscape or the path resolution?",
            _resolution(),
            "cpu",
        ),
        Preset("tiny", "a 4-run smoke test (seconds)", _tiny(), "cpu"),
    ]
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"preset={name!r}: must be one of {sorted(PRESETS)}")
    return PRESETS[name]


def _forward_flops(c: RunConfig) -> tuple[int, int]:
    """(parameters, forward FLOPs per example) counted on the meta device."""
    shape, classes, _ = DATASET_SHAPES[c.data.name]
    text = c.data.name in TEXT_DATASETS
    shape = (c.data.context,) if text else shape
    with torch.device("meta"):
        model = build_model(c.model.arch, c.model.width, c.model.depth, shape, classes)
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *shape, dtype=torch.int64 if text else torch.float32))
    return n_params(model), int(counter.get_total_flops())


def run_cost(c: RunConfig) -> dict[str, Any]:
    """Parameters, evaluations per step and FLOPs of one run (see the module docstring)."""
    p, f = _forward_flops(c)
    t, q = c.train, c.paths
    n = min(c.data.n_train or DATASET_SHAPES[c.data.name][2], DATASET_SHAPES[c.data.name][2])
    pairs = t.minima * (t.minima - 1) // 2
    interior = (q.n_points + q.max_points) / 2 - 2
    train_step = t.minima * (t.batch_size or n)
    noisy = q.noisy_steps if q.batch_size else 0
    path_step = pairs * interior * (q.batch_size or n)  # a minibatch step, if any
    path_examples = pairs * interior * ((q.batch_size or n) * noisy + n * (q.steps - noisy))
    checks_train = t.minima * n * t.steps / 50
    dense = pairs * ((q.max_points - 1) * q.check_density + 1) * n * q.steps / q.check_every
    final = pairs * (q.max_points - 1) * (8 + 16) * n
    hvp = pairs * LANCZOS_STEPS * n  # the certificates: a Hessian-vector product ~ 5 forwards
    checks = 3 * f * checks_train + f * (dense + final) + 5 * f * hvp
    flops = 3 * f * (train_step * t.steps + path_examples) + checks
    return {
        "parameters": p,
        "forward FLOPs per example": f,
        "examples per training step": train_step,
        "examples per path step": int(path_step),
        "FLOPs": flops,
        "check FLOPs": checks,
        # by stage (they add up to FLOPs): training the minima, the path steps with their
        # dense checks, and the paths' final evaluation and certificates after the last step
        "minima FLOPs": 3 * f * (train_step * t.steps + checks_train),
        "path step FLOPs": f * (3 * path_examples + dense),
        "path final FLOPs": f * (final + 5 * hvp),
    }


def estimate_cost(preset: Preset | str) -> dict[str, Any]:
    """The cost of a preset: runs, parameter range, evaluations per step, GPU minutes."""
    preset = get_preset(preset) if isinstance(preset, str) else preset
    seen: dict[str, RunConfig] = {}
    for s in preset.specs:
        for c in expand(s):
            seen.setdefault(c.run_id, c)
    costs = [run_cost(c) for c in seen.values()]
    flops = sum(x["FLOPs"] for x in costs)
    params = [x["parameters"] for x in costs]
    return {
        "preset": preset.name,
        "runs": len(costs),
        "parameters": (min(params), max(params)),
        "examples per training step": max(x["examples per training step"] for x in costs),
        "examples per path step": max(x["examples per path step"] for x in costs),
        "PFLOP": flops / 1e15,
        "GPU minutes": math.ceil(flops / GPU_FLOPS / 60),
        "share in full-data checks": sum(x["check FLOPs"] for x in costs) / flops,
    }
