"""Named sweeps: the paper's settings, and the small CPU reproduction of ``docs/REPRODUCTION.md``.

``python -m core sweep --preset NAME`` runs one; ``python -m core run --preset NAME`` runs the
first configuration of it. Every preset states its cost (``estimate_cost``, by the cost
model of ``core.runs.cost``): parameters per network, evaluations per step, and the
floating-point work of the whole sweep in GPU minutes, expected (the path steps that finished
runs used) and at most (every pair to its step cap).

The paper's settings were adapted as the authors' code suggests (``PAPER.md``): 8 minima from
different seeds, two learning-rate regimes, L2 1e-5 (fully connected) and 5e-5 (CNN),
minibatch 256; the landscape (and every saddle) is measured on a fixed training subset of
10,000 examples, as the authors evaluated saddles on a subset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.runs.config import DataConfig, ModelConfig, PathConfig, RunConfig, TrainConfig
from core.runs.cost import GPU_FLOPS, PATH_USAGE, run_cost
from core.runs.sweep import SweepSpec, expand

__all__ = ["GPU_FLOPS", "PRESETS", "Preset", "estimate_cost", "get_preset", "run_cost"]


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


def _first() -> tuple[SweepSpec, ...]:
    """A first barcode with visible barriers: tanh networks so narrow (4 hidden units) and so
    regularised (L2 1e-2) that their minima are distinct and well conditioned, trained by L-BFGS
    to a gradient of 1e-5; 500 examples keep it to about 20 minutes on one core. Its minima are
    also aligned by weight matching: the barcode modulo the units' symmetry is far lower than
    the raw one, an upper bound too (``bench/invariance.py``). Every pair is searched once more
    with a quarter of the trust radius, and every pair across a pass that then ends a bar is
    probed at a tenth, two fifths and four times it (``PathOptions.probe``): which of several
    passes between two minima a chain relaxes onto depends on its step size. With them the trust
    radii 0.05-0.5 read the barcode modulo the symmetry of seed 0 within 0.1% (0.01456), and
    that of seed 1 at 0.02853 with 0.05 and 0.2 but 0.04054 with 0.5, where the run's own check
    says settled (``bench/invariance.py``). The run says whether the probe still lowered the
    barcode (its route-search line). Chains of 20-32 points:
    with 10-16, the restarted search read the barcode modulo the symmetry up to 43% higher (seed
    1: 0.0408 against 0.0285, which 40-64 points read again)."""
    base = RunConfig(
        data=DataConfig(name="digits", n_train=500),
        model=ModelConfig(arch="mlp", width=4, depth=1, activation="tanh"),
        train=TrainConfig(minima=6, optimizer="lbfgs", lr=0.1, steps=20000, l2=1e-2, grad_tol=1e-5),
        paths=PathConfig(
            align="weight-matching",
            restarts=1,
            probe=True,
            n_points=20,
            max_points=32,
            steps=6000,
        ),
        device="cpu",
    )
    return (SweepSpec(base=base),)


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
            "first",
            "the first experiment (the Home page's): 6 tanh MLPs of width 4 on 500 digits, "
            "L2 1e-2, aligned by weight matching, every pair searched twice; its barcode "
            "modulo the units' symmetry has visible barriers, far lower than the raw ones; both "
            "are upper bounds, and the run says whether its route search still lowered them",
            _first(),
            "cpu",
        ),
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
            "docs/REPRODUCTION.md: cpu-digits then cpu-mnist1d (measured: 70 of its 75 runs "
            "in 102 minutes of run time on a shared 2-core CPU, one thread per run; MNIST-1D "
            "CNNs of depth 2-3 take 14-19 minutes each, their capped paths split at dips)",
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


def estimate_cost(preset: Preset | str) -> dict[str, Any]:
    """The cost of a preset: runs, parameter range, evaluations per step, PFLOP and GPU
    minutes expected (``PATH_USAGE``) and at the step caps (the bound)."""
    preset = get_preset(preset) if isinstance(preset, str) else preset
    seen: dict[str, RunConfig] = {}
    for s in preset.specs:
        for c in expand(s):
            seen.setdefault(c.run_id, c)
    costs = [run_cost(c) for c in seen.values()]
    kinds = {(c.data.name, c.model.arch) for c in seen.values()}
    flops = sum(x["expected FLOPs"] for x in costs)
    bound = sum(x["FLOPs"] for x in costs)
    params = [x["parameters"] for x in costs]
    return {
        "preset": preset.name,
        "runs": len(costs),
        "parameters": (min(params), max(params)),
        "examples per training step": max(x["examples per training step"] for x in costs),
        "examples per path step": max(x["examples per path step"] for x in costs),
        "measured": sorted(kinds & set(PATH_USAGE)),  # (dataset, arch) with measured steps
        "unmeasured": sorted(kinds - set(PATH_USAGE)),  # estimated at their caps
        "PFLOP": flops / 1e15,
        "GPU minutes": math.ceil(flops / GPU_FLOPS / 60),
        "PFLOP bound": bound / 1e15,
        "GPU minutes bound": math.ceil(bound / GPU_FLOPS / 60),
        "share in full-data checks": sum(x["expected check FLOPs"] for x in costs) / flops,
    }
