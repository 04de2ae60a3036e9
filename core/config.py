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
LATER_DEFAULTS = {("paths", "precision"): "float32", ("paths", "compile"): False,
                  ("memory_mb", None): None}  # fmt: skip
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


@dataclass(frozen=True)
class DataConfig:
    name: str = "digits"  # one of DATASETS; digits and mnist1d work offline
    n_train: int | None = None  # seeded subset of the training set; None = all
    n_test: int | None = None  # seeded subset of the test set; None = all
    data_root: str = "data"  # where torchvision datasets live
    download: bool = False  # let torchvision download (needs the internet)


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "mlp"  # one of ARCHITECTURES
    width: int = 8  # hidden units (mlp), channels (cnn, resnet), embedding size (transformer)
    depth: int = 1  # hidden layers / conv blocks / residual blocks / encoder blocks


@dataclass(frozen=True)
class TrainConfig:
    minima: int = 8  # independent starts, one network each
    regime: str = "anneal"  # "anneal": lr -> lr_final (cosine); "constant": lr throughout
    lr: float = 0.02  # Adam step size at the start
    lr_final: float = 1e-4  # step size at the end of the anneal
    steps: int = 3000  # step cap per minimum
    batch_size: int | None = None  # minibatch size for training steps; None = full batch
    l2: float = 1e-4  # weight of ||theta||^2 / 2 in the loss (gives cross-entropy true minima)
    grad_tol: float = 1e-3  # a trained network is a minimum once ||grad|| is below this

    def __post_init__(self) -> None:
        _coerce_floats(self)


@dataclass(frozen=True)
class PathConfig:
    pairs: str = "all"  # "all" pairs, or "mst" refinement (fewer paths; an empirical rule)
    n_points: int = 10  # points per path at the start, endpoints included
    max_points: int = 16  # paths grow to this many points where under-resolved
    steps: int = 3000  # step cap per path (a path that converges stops costing anything)
    force_tol: float = 1e-3  # converged: max perpendicular force <= force_tol * gradient scale
    grad_tol: float = 1e-4  # ... and the climbing point's gradient <= grad_tol * gradient scale
    batch_size: int | None = None  # minibatch for the first noisy_steps steps; None = full data
    noisy_steps: int = 0  # path steps on minibatches before the full-data steps
    saddle_tol: float = 1e-4  # doubling the final interpolation density moves no saddle more
    precision: str = "float32"  # path steps in "bfloat16" (autocast); saddles always float32
    compile: bool = False  # torch.compile the path-step loss (pays off on CUDA; ~30 s to build)

    def __post_init__(self) -> None:
        _coerce_floats(self)


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    paths: PathConfig = field(default_factory=PathConfig)
    seed: int = 0  # every random choice (split, init, minibatches) derives from this
    device: str = "auto"  # "auto" uses CUDA when present
    memory_mb: int | None = None  # activation memory per evaluation block; None: half the free
    # GPU memory, or a quarter of RAM. The engine sizes its blocks to stay under it.
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

    @property
    def run_id(self) -> str:
        """12 hex digits of the SHA-256 of the canonical JSON (fields of ``LATER_DEFAULTS`` at
        their default left out)."""
        d = self.to_dict()
        for (a, b), default in LATER_DEFAULTS.items():
            holder, key = (d[a], b) if b else (d, a)
            if holder[key] == default:
                del holder[key]
        canon = json.dumps(d, sort_keys=True, separators=(",", ":"))
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
    _check(_is_int(v) and v >= lo and (hi is None or v <= hi), name, v,
           f"an integer >= {lo}" + (f" and <= {hi}" if hi else ""))  # fmt: skip


def _is_finite(v: Any) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an int beyond the float range
        return False


def _pos_float(name, v, allow_zero=False):
    ok = isinstance(v, int | float) and not isinstance(v, bool) and _is_finite(v)
    _check(ok and (v > 0 or (allow_zero and v == 0)), name, v,
           "a finite number " + (">= 0" if allow_zero else "> 0"))  # fmt: skip


def _opt_int(name, v):
    if v is not None:
        _pos_int(name, v)


def validate(c: RunConfig) -> None:
    """Raise ValueError naming the first bad field."""
    for name, cls in SECTIONS.items():
        _check(isinstance(getattr(c, name), cls), name, getattr(c, name), f"a {cls.__name__}")
    d, m, t, p = c.data, c.model, c.train, c.paths
    _check(d.name in DATASETS, "data.name", d.name, f"one of {DATASETS}")
    _opt_int("data.n_train", d.n_train)
    _opt_int("data.n_test", d.n_test)
    _check(isinstance(d.data_root, str) and d.data_root != "", "data.data_root", d.data_root,
           "a non-empty path")  # fmt: skip
    _check(isinstance(d.download, bool), "data.download", d.download, "true or false")
    _check(m.arch in ARCHITECTURES, "model.arch", m.arch, f"one of {ARCHITECTURES}")
    _pos_int("model.width", m.width, hi=4096)
    _pos_int("model.depth", m.depth, hi=64)
    _pos_int("train.minima", t.minima, lo=2, hi=256)
    _check(t.regime in REGIMES, "train.regime", t.regime, f"one of {REGIMES}")
    _pos_float("train.lr", t.lr)
    _pos_float("train.lr_final", t.lr_final)
    _pos_int("train.steps", t.steps, hi=10_000_000)
    _opt_int("train.batch_size", t.batch_size)
    _pos_float("train.l2", t.l2, allow_zero=True)
    _pos_float("train.grad_tol", t.grad_tol)
    _check(p.pairs in PAIRS, "paths.pairs", p.pairs, f"one of {PAIRS}")
    _pos_int("paths.n_points", p.n_points, lo=3, hi=1024)
    _pos_int("paths.max_points", p.max_points, lo=p.n_points if _is_int(p.n_points) else 3,
             hi=4096)  # fmt: skip
    _pos_int("paths.steps", p.steps, hi=10_000_000)
    _pos_float("paths.force_tol", p.force_tol)
    _pos_float("paths.grad_tol", p.grad_tol)
    _opt_int("paths.batch_size", p.batch_size)
    _pos_int("paths.noisy_steps", p.noisy_steps, lo=0, hi=10_000_000)
    _pos_float("paths.saddle_tol", p.saddle_tol)
    _check(p.precision in PRECISIONS, "paths.precision", p.precision, f"one of {PRECISIONS}")
    _check(isinstance(p.compile, bool), "paths.compile", p.compile, "true or false")
    _opt_int("memory_mb", c.memory_mb)
    _pos_int("seed", c.seed, lo=0, hi=2**63 - 1)
    _check(c.device in DEVICES, "device", c.device, f"one of {DEVICES}")
    _pos_int("version", c.version, hi=FORMAT_VERSION)
