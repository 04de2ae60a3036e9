"""One frozen config per run, with a strict JSON round trip; its hash is the run id.

Unknown keys, missing sections, wrong types and out-of-range values raise ValueError that
names the field (``train.lr``) and the value. A config written by a newer format version is
refused rather than misread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

FORMAT_VERSION = 3  # 2: paths converge by force (no paths.lr); 3: relaxed by L-BFGS
DATASETS = ("digits", "mnist1d", "mnist", "fashion_mnist", "cifar10", "cifar100", "svhn")
ARCHITECTURES = ("mlp", "cnn", "resnet", "transformer")
REGIMES = ("anneal", "constant")
PAIRS = ("all", "mst")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("float32", "bfloat16")
# Fields added after runs were first stored: at their default they are left out of the hash,
# so the run ids of configs written before them stay what they were.
LATER_DEFAULTS = {
    ("paths", "precision"): "float32",
    ("paths", "compile"): False,
    ("memory_mb", None): None,
    ("paths", "check_every"): 25,
    ("paths", "check_density"): 2,
}
# The same for sweep ids (a sweep's specs hold whole configs): the fields added after sweeps
# were first stored.
LATER_IN_SWEEPS = {("paths", "check_every"): 25, ("paths", "check_density"): 2}
MAX_PARAMS = 50_000_000  # refuse networks this large before allocating anything
MAX_PATH_VALUES = 500_000_000  # refuse runs whose path points (E x N x P) exceed this


def _coerce_floats(section: Any) -> None:
    """Store an int given for a float field as a float (and -0.0 as 0.0).

    ``lr=1`` and ``lr=1.0`` are then the same config with the same run id and the same JSON;
    anything else is left for ``validate`` to judge.
    """
    for f in dataclasses.fields(section):
        v = getattr(section, f.name)
        if "float" in str(f.type) and isinstance(v, int | float) and not isinstance(v, bool):
            try:
                object.__setattr__(section, f.name, float(v) + 0.0)
            except OverflowError:  # an int too large for a float; validate rejects it
                pass


def knob(
    default: Any,
    label: str,
    help: str,
    *,
    flag: str | None = None,
    choices: tuple | None = None,
    lo: float | None = None,
    hi: float | None = None,
    zero_is_none: bool = False,
    advanced: bool = False,
) -> Any:
    """A config field, declared once: its default, its name in the dashboard (``label``) and
    what it means (``help``), its bounds (``lo``/``hi``, or ``choices``), its command-line
    flag (``--name-with-dashes`` unless ``flag`` says otherwise; ``zero_is_none``: the flag's
    0 stands for None), and whether the Run page tucks it away (``advanced``). ``validate``,
    the CLI's flags and the Run page's form are generated from these declarations."""
    md = {
        "help": help,
        "flag": flag,
        "choices": choices,
        "lo": lo,
        "hi": hi,
        "zero_is_none": zero_is_none,
        "label": label,
        "advanced": advanced,
    }
    return field(default=default, metadata=md)


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
        1, "Depth", "hidden layers / conv blocks / residual blocks / encoder blocks", hi=64
    )


@dataclass(frozen=True)
class TrainConfig:
    minima: int = knob(
        8, "Minima (training starts)", "independent starts, one trained network each", lo=2, hi=256
    )
    regime: str = knob(
        "anneal",
        "Learning-rate regime",
        "learning rate: 'anneal' (cosine, lr -> lr_final) or 'constant'",
        choices=REGIMES,
    )
    lr: float = knob(0.02, "Learning rate (Adam)", "Adam step size at the start of training")
    lr_final: float = knob(1e-4, "Final learning rate", "Adam step size at the end of the anneal")
    steps: int = knob(3000, "Training steps (cap)", "training step cap per minimum", hi=10_000_000)
    batch_size: int | None = knob(
        None, "Minibatch (0 = full batch)", "training minibatch (default: full batch)"
    )
    l2: float = knob(
        1e-4,
        "L2 weight",
        "weight of ||theta||^2 / 2 in the loss (gives cross-entropy true minima)",
        lo=0,
    )
    grad_tol: float = knob(
        1e-3, "Gradient tolerance", "a trained network is a minimum once ||grad|| is below this"
    )

    def __post_init__(self) -> None:
        _coerce_floats(self)


@dataclass(frozen=True)
class PathConfig:
    pairs: str = knob(
        "all",
        "Pairs",
        "which pairs get a path: 'all', or 'mst' refinement (fewer paths; an empirical rule)",
        choices=PAIRS,
    )
    n_points: int = knob(
        10,
        "Points per path",
        "points per path at the start, endpoints included",
        flag="--path-points",
        lo=3,
        hi=1024,
    )
    max_points: int = knob(
        16,
        "Max points per path",
        "points a path may grow to where under-resolved",
        flag="--path-max-points",
        lo=3,
        hi=4096,
    )
    steps: int = knob(
        3000,
        "Path steps (cap)",
        "step cap per path (a finished path stops costing anything)",
        flag="--path-steps",
        hi=10_000_000,
    )
    force_tol: float = knob(
        1e-3,
        "Force tolerance (x gradient scale)",
        "converged: largest perpendicular force below this times the pair's gradient scale",
    )
    grad_tol: float = knob(
        1e-4,
        "Climbing tolerance (x gradient scale)",
        "converged: the climbing point's gradient below this times the scale",
        flag="--climb-tol",
    )
    batch_size: int | None = knob(
        None,
        "Path minibatch (0 = full data)",
        "minibatch of the first noisy_steps path steps (0 or none: full data)",
        flag="--path-batch-size",
        zero_is_none=True,
        advanced=True,
    )
    noisy_steps: int = knob(
        0,
        "Minibatch steps first",
        "path steps on minibatches before the full-data steps",
        lo=0,
        hi=10_000_000,
        advanced=True,
    )
    saddle_tol: float = knob(
        1e-4,
        "Saddle tolerance",
        "resolution of a saddle: doubling the final density moves none more; 'no barrier' below it",
    )
    precision: str = knob(
        "float32",
        "Path-step precision",
        "path steps' precision ('bfloat16': autocast); saddles are always float32",
        flag="--path-precision",
        choices=PRECISIONS,
        advanced=True,
    )
    compile: bool = knob(
        False,
        "torch.compile path steps",
        "torch.compile the path-step loss (pays off on CUDA; ~30 s to build)",
        advanced=True,
    )
    check_every: int = knob(
        25,
        "Path check interval (steps)",
        "every this many steps each path is evaluated densely: its saddle estimate, the "
        "'no barrier' test and chain growth",
        hi=1_000_000,
        advanced=True,
    )
    check_density: int = knob(
        2,
        "Points per interval at checks",
        "interpolated points between neighbours at those checks (the final saddles are denser, "
        "until stable)",
        hi=1024,
        advanced=True,
    )

    def __post_init__(self) -> None:
        _coerce_floats(self)


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
        newer = " (a newer format)" if _is_int(v) and v > FORMAT_VERSION else ""
        if _is_int(v) and 1 <= v < FORMAT_VERSION:
            raise ValueError(
                f"config.version={v!r}: written for an earlier path optimiser, whose paths "
                f"this program does not compute; it reads format version {FORMAT_VERSION}: "
                "run the experiment again"
            )
        if not _is_int(v) or v > FORMAT_VERSION:
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


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check(ok: bool, name: str, value: Any, want: str) -> None:
    if not ok:
        text = repr(value)
        text = text if len(text) <= 60 else f"{text[:40]}...({len(text)} characters)"
        raise ValueError(f"{name}={text}: must be {want}")


def _pos_int(name, v, lo=1, hi=None):
    _check(
        _is_int(v) and v >= lo and (hi is None or v <= hi),
        name,
        v,
        f"an integer >= {lo}" + (f" and <= {hi}" if hi else ""),
    )


def _is_finite(v: Any) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an int beyond the float range
        return False


def _pos_float(name, v, allow_zero=False):
    ok = isinstance(v, int | float) and not isinstance(v, bool) and _is_finite(v)
    _check(
        ok and (v > 0 or (allow_zero and v == 0)),
        name,
        v,
        "a finite number " + (">= 0" if allow_zero else "> 0"),
    )


def validate(c: RunConfig) -> None:
    """Raise ValueError naming the first bad field, from the fields' declarations."""
    for name, cls in SECTIONS.items():
        _check(isinstance(getattr(c, name), cls), name, getattr(c, name), f"a {cls.__name__}")
    for where, f, v in fields_of(c):
        _check_field(where, f, v)
    p = c.paths
    if _is_int(p.n_points):  # the one bound that depends on another field
        _pos_int("paths.max_points", p.max_points, lo=p.n_points, hi=4096)
    _pos_int("version", c.version, hi=FORMAT_VERSION)


def fields_of(c: RunConfig):
    """(``"section.name"``, dataclass field, value) of every declared field of ``c``, sections
    first, in declaration order (``version`` left out)."""
    for f in dataclasses.fields(c):
        sub = getattr(c, f.name)
        if f.name in SECTIONS:
            for g in dataclasses.fields(sub):
                yield f"{f.name}.{g.name}", g, getattr(sub, g.name)
        elif f.name != "version":
            yield f.name, f, sub


def _check_field(where: str, f: dataclasses.Field, v: Any) -> None:
    md, kind = f.metadata, str(f.type)
    if md.get("choices"):
        _check(v in md["choices"], where, v, f"one of {md['choices']}")
    elif kind == "bool":
        _check(isinstance(v, bool), where, v, "true or false")
    elif kind == "str":
        _check(isinstance(v, str) and v != "", where, v, "a non-empty path")
    elif kind.startswith("int"):
        if not (kind.endswith("None") and v is None):
            lo = md.get("lo")
            _pos_int(where, v, lo=1 if lo is None else lo, hi=md.get("hi"))
    elif kind == "float":
        _pos_float(where, v, allow_zero=md.get("lo") == 0)
