"""Sweeps on Ray: every run of a sweep a Ray task, results written by the driver.

``run_on_ray(configs, store, address=None)`` starts Ray on this machine (or joins the cluster
at ``address``), submits one task per configuration with its declared resources (one CPU;
one GPU where the run's device is CUDA), and, as each task finishes, writes the run's files
into ``store`` on the driver: workers compute in their own temporary run store and return
the files, so no shared filesystem is needed. A worker that dies is retried by Ray
(``MAX_RETRIES``); a run that raises ValueError or RuntimeError comes back as its message. A
finished run is never computed again: the caller submits only runs whose results are not
in the store, and run ids are config hashes.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from core.runs.config import RunConfig
from core.runs.files import atomic_write
from core.runs.store import STAGE_FILES, STAGES, RunStore

log = logging.getLogger(__name__)

MAX_RETRIES = 3  # a killed worker's task runs again, from the start of its run
ROOT = Path(__file__).resolve().parents[2]  # the folder that holds core/


def _compute(config: dict) -> dict[str, bytes] | str:
    """One run in a temporary store on the worker: its files, or the error's message."""
    import torch  # the worker process's own torch

    from core.runs.pipeline import run

    torch.set_num_threads(1)  # one CPU per task, as declared
    cfg = RunConfig.from_dict(config)
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(tmp)
        try:
            run(cfg, store=store)
        except (ValueError, RuntimeError) as exc:
            return f"{type(exc).__name__}: {exc}"
        d = store.dir(cfg.run_id)
        return {p.name: p.read_bytes() for p in d.iterdir() if not p.name.startswith(".")}


def write_run_files(store: RunStore, run_id: str, files: dict[str, bytes]) -> None:
    """Write a run's files into ``store`` under its lock: the config, then each stage's
    files in order (a stage is finished once its .json exists)."""
    order = ["config.json"] + [name for s in STAGES for name in STAGE_FILES[s]]
    unknown = sorted(set(files) - set(order))
    if unknown:
        raise ValueError(f"run {run_id}: unexpected file(s) from a worker: {unknown}")
    with store.lock(run_id) as d:
        for name in order:
            if name in files:
                atomic_write(Path(d) / name, lambda tmp, data=files[name]: tmp.write_bytes(data))


def run_on_ray(
    configs: Sequence[RunConfig], store: RunStore, *, address: str | None = None
) -> Iterator[tuple[RunConfig, str | None]]:
    """Compute ``configs`` as Ray tasks; yields (config, None) as each run is written into
    ``store``, or (config, message) for a run that failed, in the order they finish."""
    import ray  # an optional dependency of the serial default

    if not ray.is_initialized():
        here = {"env_vars": {"PYTHONPATH": str(ROOT)}}  # workers import this code base
        ray.init(address=address, include_dashboard=False, log_to_driver=False, runtime_env=here)
    remote = ray.remote(max_retries=MAX_RETRIES)(_compute)
    pending = {}
    for c in configs:
        gpus = 1 if c.device == "cuda" else 0
        ref = remote.options(num_cpus=1, num_gpus=gpus).remote(c.to_dict())
        pending[ref] = c
    while pending:
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        c = pending.pop(ref)
        out = ray.get(ref)
        if isinstance(out, str):
            yield c, out
            continue
        write_run_files(store, c.run_id, out)
        yield c, None


def shutdown() -> None:
    """Stop the Ray instance this process started (a joined cluster keeps running)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()

