"""Files that are complete or absent: atomic writes, JSON with non-finite numbers, safetensors.

Every write goes to a temp file (``.tmp-*``), is fsynced and renamed, and the folder is
fsynced: a file that exists is complete, and a process killed mid-write leaves at most a
temp file that is never read. Tensors are safetensors, numbers JSON: nothing is unpickled.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

TMP_PREFIX = ".tmp-"
PAUSE_AT: str | None = None  # set by the crash tests' harness: the point to sleep at


def pause_point(name: str) -> None:
    """Test hook for the crash tests: when ``PAUSE_AT`` (set by their harness) equals
    ``name``, say ``paused at NAME`` on stderr and sleep until killed. Points: "minima" and
    "paths" (inside the optimisation, at a progress report), "write:FILE" (FILE's temp file
    is written and fsynced, not yet renamed)."""
    if PAUSE_AT == name:
        print(f"paused at {name}", file=sys.stderr, flush=True)
        while True:
            time.sleep(60)


def atomic_write(path: Path, write) -> None:
    """``write(tmp_path)``, fsync, rename to ``path``, fsync the folder; no partial ``path``."""
    tmp = path.parent / f"{TMP_PREFIX}{path.name}-{secrets.token_hex(6)}"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    mode = tmp.stat().st_mode & 0o777  # what the umask allows: shared folders stay readable
    try:
        write(tmp)
        os.chmod(tmp, mode)  # a writer that replaces the file may have made it private
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        pause_point(f"write:{path.name}")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)  # the rename itself survives a power cut
    finally:
        os.close(dfd)


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically; non-finite floats become the strings "inf"/"-inf"/"nan"."""
    text = json.dumps(_jsonable(obj), indent=1, allow_nan=False)
    atomic_write(path, lambda tmp: tmp.write_text(text))


def read_json(path: Path) -> Any:
    """Read a JSON file written by write_json; ValueError naming the file if it is corrupt."""
    try:
        return _unjson(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is corrupt (not valid JSON: {exc})") from None
    except OSError as exc:
        raise ValueError(f"{path} cannot be read ({exc.strerror or exc})") from None


def write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Write tensors atomically as safetensors (no pickle)."""
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(cpu, str(tmp)))


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file (no pickle); ValueError naming the file if it is missing or
    corrupt."""
    if not path.is_file():
        raise ValueError(f"{path} is missing")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise ValueError(f"{path} is corrupt ({type(exc).__name__}: {exc})") from None


def check_file(path: Path) -> None:
    """ValueError unless ``path`` is a complete JSON or safetensors file (header and size)."""
    if path.suffix == ".json":
        read_json(path)
        return
    try:
        with safe_open(str(path), framework="pt") as fh:
            fh.keys()
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path} is corrupt ({exc})") from None


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
