"""The run store: ``runs/<id>/`` holds one run's config, results and tensors.

Layout of a run folder (every file written atomically: temp file, fsync, rename, so a
file that exists is complete; a run killed mid-write leaves at most a ``.tmp-*`` file that
is never read):

    config.json          the RunConfig
    minima.json          per-minimum numbers (stage 1 finished)
    minima.safetensors   (K, P) the minima's parameters
    paths.json           per-pair numbers and saddle histories (stage 2 finished)
    paths.safetensors    every stored path's points, concatenated, with offsets
    results.json         the barcode and the summary (stage 3: the run is complete)

Tensors are safetensors, numbers JSON: nothing is ever unpickled.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from core.config import RunConfig

log = logging.getLogger(__name__)

RUN_ID = re.compile(r"^[0-9a-f]{12}$")
STAGES = ("minima", "paths", "results")


def _fsync_replace(tmp: str, dest: Path) -> None:
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, dest)


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically; non-finite floats become the strings "inf"/"-inf"/"nan"."""
    text = json.dumps(_jsonable(obj), indent=1, allow_nan=False)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    _fsync_replace(tmp, path)


def read_json(path: Path) -> Any:
    """Read a JSON file written by write_json; ValueError naming the file if it is corrupt."""
    try:
        return _unjson(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is corrupt (not valid JSON: {exc})") from None


def write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    os.close(fd)
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp)
    _fsync_replace(tmp, path)


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise ValueError(f"{path} is corrupt ({type(exc).__name__}: {exc})") from None


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if isinstance(o, np.generic):
        return _jsonable(o.item())
    if isinstance(o, float) and not math.isfinite(o):
        return "nan" if math.isnan(o) else ("inf" if o > 0 else "-inf")
    return o


_SPECIAL = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def _unjson(o: Any) -> Any:
    if isinstance(o, dict):
        return {k: _unjson(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_unjson(v) for v in o]
    if isinstance(o, str) and o in _SPECIAL:
        return _SPECIAL[o]
    return o


@dataclass
class RunInfo:
    """One line of the run list."""

    run_id: str
    config: RunConfig
    stage: str  # the last finished stage: "none", "minima", "paths" or "results"
    summary: dict[str, Any]  # from results.json when complete, else {}
    modified: float  # seconds since the epoch


class RunStore:
    """Runs under one folder. ``RunStore("runs").dir("abc123def456")``."""

    def __init__(self, root: str | os.PathLike = "runs") -> None:
        self.root = Path(root)

    def dir(self, run_id: str) -> Path:
        """The folder of a run; ValueError for anything that is not a run id."""
        if not isinstance(run_id, str) or not RUN_ID.match(run_id):
            raise ValueError(f"run id {run_id!r} is not 12 lowercase hex digits")
        return self.root / run_id

    def create(self, config: RunConfig) -> Path:
        d = self.dir(config.run_id)
        d.mkdir(parents=True, exist_ok=True)
        if not (d / "config.json").exists():
            write_json(d / "config.json", config.to_dict())
        return d

    def config(self, run_id: str) -> RunConfig:
        d = self.dir(run_id)
        if not (d / "config.json").exists():
            raise ValueError(f"no run {run_id!r} in {self.root}")
        return RunConfig.from_dict(read_json(d / "config.json"))

    def stage(self, run_id: str) -> str:
        d = self.dir(run_id)
        done = [s for s in STAGES if (d / f"{s}.json").exists()]
        return done[-1] if done else "none"

    def list(self) -> tuple[list[RunInfo], list[tuple[str, str]]]:
        """All runs, newest first, and (folder, reason) for every folder that is unreadable."""
        runs, bad = [], []
        if not self.root.is_dir():
            return runs, bad
        for d in sorted(self.root.iterdir()):
            if not d.is_dir() or not RUN_ID.match(d.name):
                continue
            try:
                cfg = self.config(d.name)
                if cfg.run_id != d.name:
                    raise ValueError(f"config hashes to {cfg.run_id}, not to its folder name")
                stage = self.stage(d.name)
                summary = read_json(d / "results.json")["summary"] if stage == "results" else {}
                mtime = max(p.stat().st_mtime for p in d.iterdir())
                runs.append(RunInfo(d.name, cfg, stage, summary, mtime))
            except (ValueError, KeyError, TypeError, OSError) as exc:
                log.warning("skipping run folder %s: %s", d, exc)
                bad.append((d.name, str(exc)))
        runs.sort(key=lambda r: r.modified, reverse=True)
        return runs, bad
