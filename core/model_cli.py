"""``python -m core analyze``: the barcode of your own model, from its checkpoints or trained.

    python -m core analyze --model torchvision:resnet18 --dataset cifar10 --checkpoints DIR
    python -m core analyze --model mypackage.nets:make_net --dataset digits --minima 6

``--model`` names a factory: ``torchvision:NAME`` calls ``torchvision.models.NAME`` with the
dataset's number of classes; ``package.module:NAME`` imports the module and calls ``NAME()``
(or takes it, if it is already an ``nn.Module``). The engine's options have the flags that
``python -m core run`` gives them (generated from ``core.engine.options``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from core.engine.options import MinimaOptions, PathOptions
from core.nets.data import DATASETS, load_dataset
from core.nets.module import BATCHNORM_MODES, landscape_of_model, model_from_factory

ENGINE = {"train": MinimaOptions, "paths": PathOptions}


def add_command(sub, add_field) -> None:
    """Add ``analyze`` to the subparsers ``sub``; ``add_field(parser, dest, field)`` adds the
    flag of one option field (the CLI's generator)."""
    a = sub.add_parser("analyze", help="barcode of your own model (a factory and checkpoints)")
    a.add_argument("--model", required=True, help="torchvision:NAME or package.module:FACTORY")
    a.add_argument("--checkpoints", help="a folder of .pt/.pth/.safetensors state dicts")
    a.add_argument("--dataset", default="digits", choices=DATASETS, help="default digits")
    a.add_argument("--data-root", default="data", help="where torchvision datasets live")
    a.add_argument("--n-train", type=int, help="seeded subset of the training set")
    a.add_argument("--minima", type=int, default=8, help="networks to train without checkpoints")
    a.add_argument("--batchnorm", default="batch", choices=BATCHNORM_MODES)
    a.add_argument("--batch-size", type=int, help="examples per evaluation batch (default all)")
    a.add_argument("--l2", type=float, default=1e-4, help="weight of ||theta||^2 / 2")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--device", default="auto")
    for section, cls in ENGINE.items():
        for f in dataclasses.fields(cls):
            add_field(a, f"{section}.{f.name}", f)


def cmd_analyze(a) -> int:
    data = load_dataset(a.dataset, data_root=a.data_root, n_train=a.n_train, seed=a.seed)
    model = model_from_factory(a.model, data.n_classes)
    options = {
        section: {
            f.name: getattr(a, f"{section}.{f.name}")
            for f in dataclasses.fields(cls)
            if getattr(a, f"{section}.{f.name}", None) is not None
        }
        for section, cls in ENGINE.items()
    }
    land = landscape_of_model(
        model,
        (data.x_train, data.y_train),
        checkpoints=a.checkpoints,
        minima=a.minima,
        seed=a.seed,
        batchnorm=a.batchnorm,
        l2=a.l2,
        batch_size=a.batch_size,
        device=a.device,
        train=options["train"],
        paths=options["paths"],
    )
    m, p, b = land.minima, land.paths, land.barcode
    print(
        f"{a.model} on {a.dataset} ({len(data.x_train)} examples, BatchNorm: {a.batchnorm}): "
        f"{len(m)} minima ({int(m.converged.sum())} meet the gradient tolerance), "
        f"{len(p)} paths ({int(np.sum(p.status == 'step cap'))} at the step cap)"
    )
    print("  bar  minimum  birth      death      length")
    for i in np.argsort(-np.where(np.isinf(b.lengths), np.inf, b.lengths), kind="stable"):
        death = "inf" if np.isinf(b.deaths[i]) else f"{b.deaths[i]:.6f}"
        length = "inf" if np.isinf(b.lengths[i]) else f"{b.lengths[i]:.3e}"
        print(f"  {i:3d}  {int(b.minimum[i]):7d}  {b.births[i]:.6f}  {death:>9}  {length:>9}")
    print(f"TO-score (sum): {b.to_score('sum'):.6g}   TO-score (max): {b.to_score('max'):.6g}")
    return 0
