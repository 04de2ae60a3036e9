"""One frozen config per run, with a strict JSON round trip; its hash is the run id.

Unknown keys, missing sections, wrong types and out-of-range values raise ValueError that
names the field (``train.lr``) and the value. A config written by a newer format version is
refused rather than misread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from core.engine.options import (
    MinimaOptions,
    PathOptions,
    check,
    check_field,
    check_fields,
    check_int,
    coerce_floats,
    is_int,
    knob,
)
from core.nets.data import DATASETS, TEXT_DATASETS
from core.nets.models import ACTIVATIONS, ARCHITECTURES, TEXT_ARCHITECTURES, WITH_ACTIVATION
from core.nets.norm import BATCHNORM_MODES
from core.nets.permutations import SUPPORTED as PERMUTABLE

FORMAT_VERSION = 3  # 2: paths converge by force (no paths.lr); 3: relaxed by L-BFGS
DEVICES = ("auto", "cpu", "cuda")
ALIGNMENTS = ("none", "weight-matching")
# Fields added after runs were first stored: at their default they are left out of the hash,
# so the run ids of configs written before them stay what they were.
LATER_IN_SWEEPS = {  # the engine's options, which network runs had fixed until they were fields
    ("data", "context"): 32,
    ("paths", "groups"): 1,
    ("paths", "align"): "none",
    ("model", "factory"): None,
    ("train", "checkpoints"): None,
    ("model", "batchnorm"): "batch",
    ("model", "norm_batch"): 256,
    ("paths", "check_every"): 25,
    ("paths", "check_density"): 2,
    ("paths", "max_move"): 0.2,
    ("paths", "climb_after"): 10,
    ("paths", "splits"): 0,
    ("paths", "neighbours"): 0,
    ("paths", "restarts"): 0,
    ("paths", "probe"): False,
    ("paths", "weight"): 2.0,
    ("paths", "final_density"): 8,
    ("paths", "max_density"): 64,
    ("train", "optimizer"): "adam",
    ("train", "loss_tol"): 0.0,
    ("train", "check_every"): 50,
    ("train", "merge_distance"): 1e-3,
    ("model", "activation"): "relu",
}
LATER_DEFAULTS = {
    ("paths", "precision"): "float32",
    ("paths", "compile"): False,
    ("memory_mb", None): None,
} | LATER_IN_SWEEPS
# LATER_IN_SWEEPS does the same for sweep ids (a sweep's specs hold whole configs): the
# fields added after sweeps were first stored.
MAX_PARAMS = 50_000_000  # refuse networks this large before allocating anything
MAX_PATH_VALUES = 500_000_000  # refuse runs whose path points (E x N x P) exceed this


@dataclass(frozen=True)
class DataConfig:
    name: str = knob(
        "digits",
        "Dataset",
        "dataset (digits and mnist1d work offline)",
        flag="--dataset",
        choices=DATASETS,
    )
    n_train: int | None = knob(
        None, "Training examples (0 = all)", "seeded subset of the training set (default: all)"
    )
    n_test: int | None = knob(
        None, "Test examples (0 = all)", "seeded subset of the test set (default: all)"
    )
    data_root: str = knob("data", "Data folder (torchvision)", "where torchvision datasets live")
    download: bool = knob(
        False, "Allow download", "let torchvision download data (needs the internet)"
    )
    context: int = knob(
        32,
        "Context (characters, text)",
        "characters per example of a text dataset (pydoc)",
        hi=4096,
        advanced=True,
    )


@dataclass(frozen=True)
class ModelConfig:
    arch: str = knob("mlp", "Architecture", "architecture", choices=ARCHITECTURES)
    width: int = knob(
        8,
        "Width",
        "hidden units (mlp), channels (cnn, resnet), embedding size (transformer)",
        hi=4096,
    )
    depth: int = knob(
        1,
        "Depth",
        "hidden layers / conv blocks / residual blocks (per stage for resnet9) / encoder blocks",
        hi=64,
    )
    activation: str = knob(
        "relu",
        "Activation",
        "hidden-unit nonlinearity of mlp, cnn and resnet: 'relu' or 'tanh' (smooth: "
        "gradient-based minima and saddle certificates converge)",
        choices=ACTIVATIONS,
    )
    factory: str | None = knob(
        None,
        "Your model (factory)",
        "your own nn.Module instead of arch, width and depth: package.module:FACTORY (called "
        "with no arguments) or torchvision:NAME (with the dataset's classes)",
        flag="--model",
    )
    batchnorm: str = knob(
        "batch",
        "BatchNorm (resnet9)",
        "BatchNorm in the landscape: 'batch' normalises each evaluation batch by its own "
        "statistics (the paper's train mode); 'recomputed' uses running statistics recomputed "
        "at every point",
        choices=BATCHNORM_MODES,
        advanced=True,
    )
    norm_batch: int = knob(
        256,
        "BatchNorm batch (examples)",
        "examples per BatchNorm evaluation batch ('batch'), or that the statistics are "
        "recomputed from ('recomputed')",
        hi=1_000_000,
        advanced=True,
    )

    @property
    def network(self) -> str:
        """In words: the factory of your model, or 'mlp width 8 depth 1' ('... tanh' when the
        activation is not ReLU)."""
        act = "" if self.activation == "relu" else f" {self.activation}"
        return self.factory or f"{self.arch} width {self.width} depth {self.depth}{act}"


@dataclass(frozen=True)
class TrainConfig(MinimaOptions):
    """How the minima are trained: the engine's ``MinimaOptions`` (Adam by default) and the
    network's own fields."""

    minima: int = knob(
        8, "Minima (training starts)", "independent starts, one trained network each", lo=2, hi=256
    )
    batch_size: int | None = knob(
        None, "Minibatch (0 = full batch)", "training minibatch (default: full batch)"
    )
    checkpoints: str | None = knob(
        None,
        "Checkpoint folder",
        "a folder of state dicts (.pt/.pth/.safetensors) that are the minima, each refined to "
        "the gradient tolerance, instead of training 'minima' networks",
    )
    l2: float = knob(
        1e-4,
        "L2 weight",
        "weight of ||theta||^2 / 2 in the loss (gives cross-entropy true minima)",
        lo=0,
    )

    def __post_init__(self) -> None:
        coerce_floats(self)  # RunConfig validates, naming the section


@dataclass(frozen=True)
class PathConfig(PathOptions):
    """How the minima are connected: the engine's ``PathOptions`` and the network's own
    fields."""

    batch_size: int | None = knob(
        None,
        "Path minibatch (0 = full data)",
        "minibatch of the first noisy_steps path steps (0 or none: full data)",
        flag="--path-batch-size",
        zero_is_none=True,
        advanced=True,
    )
    compile: bool = knob(
        False,
        "torch.compile path steps",
        "torch.compile the path-step loss (pays off on CUDA; ~30 s to build)",
        advanced=True,
    )
    align: str = knob(
        "none",
        "Align minima",
        "'weight-matching': also permute every minimum's hidden units onto the lowest "
        "minimum's (Git Re-Basin) and compute the paths and barcode of the aligned minima, "
        "stored beside the raw ones",
        choices=ALIGNMENTS,
    )

    def __post_init__(self) -> None:
        coerce_floats(self)


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    paths: PathConfig = field(default_factory=PathConfig)
    seed: int = knob(
        0,
        "Seed",
        "every random choice (split, init, minibatches) derives from this",
        lo=0,
        hi=2**63 - 1,
    )
    device: str = knob("auto", "Device", "'auto' uses CUDA when present", choices=DEVICES)
    memory_mb: int | None = knob(
        None,
        "Memory budget, MiB (0 = automatic)",
        "activation memory per evaluation block in MB "
        "(default: half the free GPU memory, or a quarter of RAM)",
        advanced=True,
    )
    version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: Any) -> RunConfig:
        return _build(cls, d, "config")

    @classmethod
    def from_record(cls, d: Any) -> RunConfig:
        """The config of a stored run or sweep: a field added later that the record lacks takes
        the value that configs written before it had (``LATER_DEFAULTS``), since that is what
        the run computed (today's default differs for ``paths.splits``)."""
        if isinstance(d, dict):
            d = {k: dict(v) if isinstance(v, dict) else v for k, v in d.items()}
            for (a, b), value in LATER_DEFAULTS.items():
                if b and isinstance(d.get(a), dict):
                    d[a].setdefault(b, value)
        return cls.from_dict(d)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"config is not valid JSON: {exc}") from None
        return cls.from_dict(d)

    def canonical(self, later: dict = LATER_DEFAULTS) -> dict[str, Any]:
        """``to_dict`` without the fields of ``later`` that are at their default: what ids
        hash, so that adding a field keeps the ids of everything written before it."""
        d = self.to_dict()
        for (a, b), default in later.items():
            holder, key = (d[a], b) if b else (d, a)
            if holder[key] == default:
                del holder[key]
        return d

    @property
    def run_id(self) -> str:
        """12 hex digits of the SHA-256 of the canonical JSON."""
        canon = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:12]

    def replace(self, **sections: Any) -> RunConfig:
        """A copy with sections or fields replaced: ``cfg.replace(model={"width": 16})``."""
        kw = {}
        for name, value in sections.items():
            if name not in {f.name for f in dataclasses.fields(self)}:
                raise ValueError(f"unknown key config.{name}")
            cur = getattr(self, name)
            if isinstance(value, dict) and name in SECTIONS:
                unknown = sorted(set(value) - {f.name for f in dataclasses.fields(cur)}, key=str)
                if unknown:
                    raise ValueError(f"unknown key config.{name}.{unknown[0]}")
                value = dataclasses.replace(cur, **value)
            kw[name] = value
        return dataclasses.replace(self, **kw)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "paths": PathConfig}


def _build(cls, d: Any, where: str):
    if not isinstance(d, dict):
        raise ValueError(f"{where} must be a JSON object, got {type(d).__name__}")
    if where == "config":  # before the keys: a newer format may well have new keys
        v = d.get("version", FORMAT_VERSION)
        newer = " (a newer format)" if is_int(v) and v > FORMAT_VERSION else ""
        if is_int(v) and 1 <= v < FORMAT_VERSION:
            raise ValueError(
                f"config.version={v!r}: written for an earlier path optimiser, whose paths "
                f"this program does not compute; it reads format version {FORMAT_VERSION}: "
                "run the experiment again"
            )
        if not is_int(v) or v > FORMAT_VERSION:
            raise ValueError(
                f"config.version={v!r}{newer}: this program reads format version {FORMAT_VERSION}"
            )
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names, key=str)
    if unknown:
        raise ValueError(f"unknown key {where}.{unknown[0]}; known: {sorted(names)}")
    kw = {}
    for f in dataclasses.fields(cls):
        if f.name not in d:
            continue
        sub = SECTIONS.get(f.name) if cls is RunConfig else None
        kw[f.name] = _build(sub, d[f.name], f"{where}.{f.name}") if sub else d[f.name]
    try:
        return cls(**kw)
    except TypeError as exc:
        raise ValueError(f"{where}: {exc}") from None


def validate(c: RunConfig) -> None:
    """Raise ValueError naming the first bad field, from the fields' declarations."""
    for name, cls in SECTIONS.items():
        check(isinstance(getattr(c, name), cls), name, getattr(c, name), f"a {cls.__name__}")
    for name in SECTIONS:
        check_fields(getattr(c, name), prefix=f"{name}.")  # and the bounds between fields
    for where, f, v in fields_of(c):
        if "." not in where:
            check_field(where, f, v)
    check_int("version", c.version, hi=FORMAT_VERSION)
    text = c.data.name in TEXT_DATASETS
    if text != (c.model.arch in TEXT_ARCHITECTURES) and not c.model.factory:
        want = "a text architecture" if text else "an image or sequence architecture"
        raise ValueError(
            f"model.arch={c.model.arch!r}: data.name={c.data.name!r} needs {want} "
            f"(text: {', '.join(TEXT_ARCHITECTURES)})"
        )
    if c.model.activation != "relu" and (c.model.factory or c.model.arch not in WITH_ACTIVATION):
        which = (
            f"model.factory={c.model.factory!r}"
            if c.model.factory
            else f"model.arch={c.model.arch!r}"
        )
        raise ValueError(
            f"model.activation={c.model.activation!r}: {which} has its own nonlinearity "
            f"(activation is for {', '.join(WITH_ACTIVATION)})"
        )
    if c.paths.align != "none" and (c.model.factory or c.model.arch not in PERMUTABLE):
        which = (
            f"model.factory={c.model.factory!r}"
            if c.model.factory
            else (f"model.arch={c.model.arch!r}")
        )
        raise ValueError(
            f"paths.align={c.paths.align!r}: {which} has no stated permutation group "
            f"(weight matching supports {', '.join(PERMUTABLE)})"
        )


def fields_of(c: RunConfig):
    """(``"section.name"``, dataclass field, value) of every declared field of ``c``, sections
    first, in declaration order: in each section the network's own fields before the engine's,
    the advanced ones last (``version`` left out)."""
    for f in dataclasses.fields(c):
        sub = getattr(c, f.name)
        if f.name in SECTIONS:
            own = vars(type(sub)).get("__annotations__", {})
            fs = dataclasses.fields(sub)
            for g in sorted(fs, key=lambda g: (g.metadata["advanced"], g.name not in own)):
                yield f"{f.name}.{g.name}", g, getattr(sub, g.name)
        elif f.name != "version":
            yield f.name, f, sub
