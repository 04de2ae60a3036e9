"""Ray: the runs of a sweep as Ray tasks, and the pairs of one run on Ray actors.

Sweeps: ``run_on_ray(configs, store, address=None)`` starts Ray on this machine (or joins the
cluster at ``address``) and submits one task per configuration with its declared resources
(one CPU; one GPU where the run's device is CUDA; ``memory_mb`` as memory). A worker that
sees the store's folder (this machine, or a shared filesystem) computes in it, saving every
stage, so a retried task resumes from its last stage; the others compute in a temporary
store and return the files, which the driver writes into ``store`` as each task finishes
(no shared filesystem needed). A worker that dies is retried by Ray (``MAX_RETRIES``); a run
that raises ValueError or RuntimeError comes back as its message. A finished run is never
computed again: the caller submits only runs whose results are not in the store, and run ids
are config hashes.

One large run: ``PairWorkers(config, n)`` is the ``group_map`` of ``core.engine.landscape_of``.
Its n Ray actors each build the run's objectives once (data and network from the config) and
relax the batches of pairs (``paths.groups``) sent to them; the driver keeps the minima,
the final checks and the barcode.
"""

from __future__ import annotations

import logging
import socket
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from torch import Tensor

from core.engine.paths import Paths, connect
from core.runs.config import RunConfig
from core.runs.files import atomic_write
from core.runs.store import STAGE_FILES, STAGES, RunStore

log = logging.getLogger(__name__)

TOKEN_FILE = ".ray-token"  # in the run store: whether a worker sees the driver's folder
CONNECT_SECONDS = 5.0  # how long an --address may take to accept a connection
BASE_MEMORY = 1 << 30  # a worker's own memory beside the activation budget
MAX_RETRIES = 3  # a killed worker's task runs again, from the start of its run
ROOT = Path(__file__).resolve().parents[2]  # the folder that holds core/


def _shared(root: str, token: str | None) -> RunStore | None:
    """The driver's run store, if this worker sees the same folder: the token the driver
    wrote there (``TOKEN_FILE``) reads back."""
    try:
        if token and (Path(root) / TOKEN_FILE).read_text() == token:
            return RunStore(root)
    except OSError:
        pass
    return None


def _compute(config: dict, root: str, token: str | None) -> dict[str, bytes] | str | None:
    """One run on a worker: in the driver's store where the worker shares it (each stage
    saved as it finishes, so a retried task resumes; returns None), else in a temporary
    store (returns its files); or the error's message."""
    import torch  # the worker process's own torch

    from core.runs.pipeline import run

    torch.set_num_threads(1)  # one CPU per task, as declared
    cfg = RunConfig.from_dict(config)
    shared = _shared(root, token)
    with tempfile.TemporaryDirectory() as tmp:
        store = shared or RunStore(tmp)
        try:
            run(cfg, store=store)
        except (ValueError, RuntimeError) as exc:
            return f"{type(exc).__name__}: {exc}"
        if shared is not None:
            return None
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


def check_address(address: str) -> None:
    """ValueError unless something listens at a ``host:port`` (or ``ray://host:port``)
    address, within ``CONNECT_SECONDS``: Ray itself retries an unreachable one for minutes."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        if address in ("auto", "local"):
            return
        raise ValueError(f"address={address!r}: expected HOST:PORT (as `ray start` prints)")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        raise ValueError(
            f"address={address!r}: no Ray cluster answers there ({exc}); start one with "
            "`ray start --head` or leave the address out to run on this machine"
        ) from None


def _ray(address: str | None):
    """The ``ray`` module, initialised: a local instance, or the cluster at ``address``."""
    import ray  # an optional dependency of the serial default

    if address:
        check_address(address)
    if not ray.is_initialized():
        here = {"env_vars": {"PYTHONPATH": str(ROOT)}}  # workers import this code base
        try:
            ray.init(
                address=address, include_dashboard=False, log_to_driver=False, runtime_env=here
            )
        except ConnectionError as exc:
            raise ValueError(f"address={address!r}: no Ray cluster there ({exc})") from None
    return ray


def task_memory(config: RunConfig) -> int:
    """Bytes of memory a run's task declares to Ray: its activation budget
    (``memory_mb``) plus ``BASE_MEMORY`` for the process, its data and its chains; 0 (none
    declared) when the budget is automatic."""
    return (config.memory_mb << 20) + BASE_MEMORY if config.memory_mb else 0


def _check_memory(ray, configs: Sequence[RunConfig]) -> None:
    """ValueError, before anything is submitted, when a run declares more memory than the
    largest Ray node has: Ray would otherwise leave it pending for ever."""
    largest = max((n["Resources"].get("memory", 0) for n in ray.nodes() if n["Alive"]), default=0)
    for c in configs:
        need = task_memory(c)
        if need > largest:
            raise ValueError(
                f"run {c.run_id}: memory_mb={c.memory_mb} needs {need / 2**30:.1f} GiB per "
                f"worker, more than the largest Ray node offers ({largest / 2**30:.1f} GiB); "
                "use a smaller memory_mb or larger nodes"
            )


def run_on_ray(
    configs: Sequence[RunConfig],
    store: RunStore,
    *,
    address: str | None = None,
    share: bool = True,
) -> Iterator[tuple[RunConfig, str | None]]:
    """Compute ``configs`` as Ray tasks; yields (config, None) as each run is in ``store``,
    or (config, message) for a run that failed, in the order they finish.

    With ``share``, a worker that sees ``store``'s folder (this machine, or a shared
    filesystem) computes in it, saving each stage; the others, and all with ``share=False``,
    return the files for the driver to write."""
    ray = _ray(address)
    _check_memory(ray, configs)
    token = None
    if share:
        token = uuid.uuid4().hex
        store.root.mkdir(parents=True, exist_ok=True)
        atomic_write(store.root / TOKEN_FILE, lambda tmp: tmp.write_text(token))
    remote = ray.remote(max_retries=MAX_RETRIES)(_compute)
    pending = {}
    for c in configs:
        gpus = 1 if c.device == "cuda" else 0
        options = dict(num_cpus=1, num_gpus=gpus, memory=task_memory(c) or None)
        ref = remote.options(**options).remote(c.to_dict(), str(store.root.resolve()), token)
        pending[ref] = c
    while pending:
        (ref,), _ = ray.wait(list(pending), num_returns=1)
        c = pending.pop(ref)
        out = ray.get(ref)
        if isinstance(out, str):
            yield c, out
            continue
        if out is not None:
            write_run_files(store, c.run_id, out)
        yield c, None


class _PairWorker:
    """A Ray actor: one run's objectives, built once, relaxing the batches of pairs sent."""

    def __init__(self, config: dict) -> None:
        import torch

        from core.runs.pipeline import path_objectives

        torch.set_num_threads(1)  # one CPU per actor, as declared
        self.objective, self.step_objective = path_objectives(RunConfig.from_dict(config))

    def connect(self, minima, pairs, opts, kw: dict) -> Paths:
        minima = minima.to(self.objective.device)
        return connect(
            self.objective, minima, pairs, opts, step_objective=self.step_objective, **kw
        )


class PairWorkers:
    """``n`` Ray actors relaxing the batches of pairs of the run ``config``: the
    ``group_map`` of ``core.engine.landscape_of`` (batch i goes to actor i mod n; each
    declares one CPU, or one GPU for a CUDA run). ``close()`` ends them."""

    def __init__(self, config: RunConfig, n: int, *, address: str | None = None) -> None:
        if n < 1:
            raise ValueError(f"n={n}: at least one worker")
        self._ray = _ray(address)
        _check_memory(self._ray, [config])
        gpus = 1 if config.device == "cuda" else 0
        memory = task_memory(config) or None
        actor = self._ray.remote(
            num_cpus=1, num_gpus=gpus, memory=memory, max_restarts=MAX_RETRIES
        )(_PairWorker)
        self.actors = [actor.remote(config.to_dict()) for _ in range(n)]

    def __call__(self, minima: Tensor, groups: list, opts, kw: dict) -> list[Paths]:
        here = minima.device
        cpu = minima.detach().cpu()
        refs = [
            self.actors[i % len(self.actors)].connect.remote(cpu, g, opts, kw)
            for i, g in enumerate(groups)
        ]
        parts = self._ray.get(refs)
        for p in parts:
            p.points = [q.to(here) for q in p.points]
        return parts

    def close(self) -> None:
        for a in self.actors:
            self._ray.kill(a)
        self.actors = []

    def __enter__(self) -> PairWorkers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def shutdown() -> None:
    """Stop the Ray instance this process started (a joined cluster keeps running)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
