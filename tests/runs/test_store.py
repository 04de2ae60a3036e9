"""The run store: atomic files, run ids that cannot leave the store, corrupt folders reported
and skipped, leftover temp files cleaned, the per-run lock, repair of bad stages.

Runs here are written by hand (``fake_run``: consistent files of every stage, no training),
so these tests need no network and take milliseconds.
"""

import json
import os
import re
import threading
import time

import numpy as np
import pytest
import torch
from conftest import BAD_IDS, fake_run

from core.runs.config import RunConfig
from core.runs.files import check_file, read_json, read_tensors, write_json, write_tensors
from core.runs.store import RunBusyError, RunStore, read_run


def tmp_files(d):
    return sorted(p.name for p in d.iterdir() if p.name.startswith(".tmp-"))


# --- files --------------------------------------------------------------------------------


def test_json_round_trip_with_non_finite_numbers(tmp_path):
    obj = {"a": [1.0, float("inf"), float("-inf")], "b": np.array([2, 3]), "c": {"d": "x"}}
    write_json(tmp_path / "f.json", obj)
    back = read_json(tmp_path / "f.json")
    assert back["a"] == [1.0, float("inf"), float("-inf")] and back["b"] == [2, 3]
    assert np.isnan(read_json_nan(tmp_path))
    assert tmp_files(tmp_path) == []


def read_json_nan(tmp_path):
    write_json(tmp_path / "n.json", {"v": float("nan")})
    return read_json(tmp_path / "n.json")["v"]


def test_failed_write_leaves_no_file_and_no_temp(tmp_path):
    with pytest.raises(AttributeError):
        write_tensors(tmp_path / "t.safetensors", {"x": "not a tensor"})
    assert list(tmp_path.iterdir()) == []


def test_overwrite_is_all_or_nothing(tmp_path):
    write_json(tmp_path / "f.json", {"v": 1})
    write_json(tmp_path / "f.json", {"v": 2})
    assert read_json(tmp_path / "f.json") == {"v": 2} and tmp_files(tmp_path) == []


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", r"f\.json is corrupt \(not valid JSON"),
        (b'{"barcode": {"births": [0.1, 0.', r"f\.json is corrupt"),
        (b"\xff\xfe\x00garbage", r"f\.json is corrupt"),
    ],
)
def test_corrupt_json_is_a_value_error_naming_the_file(tmp_path, content, match):
    (tmp_path / "f.json").write_bytes(content)
    with pytest.raises(ValueError, match=match):
        read_json(tmp_path / "f.json")


def test_unreadable_json_is_a_value_error(tmp_path):
    (tmp_path / "f.json").mkdir()
    with pytest.raises(ValueError, match=r"f\.json cannot be read"):
        read_json(tmp_path / "f.json")


def test_corrupt_safetensors(tmp_path):
    p = tmp_path / "t.safetensors"
    write_tensors(p, {"x": torch.ones(10, 10)})
    check_file(p)
    p.write_bytes(p.read_bytes()[:-5])  # truncated
    with pytest.raises(ValueError, match=r"t\.safetensors is corrupt"):
        check_file(p)
    p.write_bytes(b"\x00" * 3 + os.urandom(40))  # garbage
    with pytest.raises(ValueError, match=r"t\.safetensors is corrupt"):
        read_tensors(p)
    with pytest.raises(ValueError, match=r"t\.safetensors is corrupt"):
        check_file(p)


# --- run ids ------------------------------------------------------------------------------


@pytest.mark.parametrize("run_id", BAD_IDS, ids=repr)
def test_run_ids_cannot_leave_the_store(tmp_path, run_id):
    store = RunStore(tmp_path)
    with pytest.raises(ValueError, match=r"is not 12 lowercase hex digits"):
        store.dir(run_id)
    with pytest.raises(ValueError, match=r"is not 12 lowercase hex digits"):
        read_run(store, run_id)


def test_missing_run(tmp_path):
    with pytest.raises(ValueError, match=r"no run 'abcdef012345'"):
        read_run(RunStore(tmp_path), "abcdef012345")


# --- list and load ------------------------------------------------------------------------


def test_fake_run_loads(tmp_path):
    store = RunStore(tmp_path)
    run_id = fake_run(store)
    run = read_run(store, run_id)
    assert run.summary.to_score_sum == pytest.approx(0.3 + 0.4)
    assert len(run.paths.points) == 3 and run.minima.thetas.shape == (3, 2)


def _corrupt_folders(store: RunStore) -> dict[str, str]:
    """Runs broken in every way the store can meet; id -> the words its reason must contain."""
    broken = {}
    rid = fake_run(store, seed=1)
    (store.dir(rid) / "results.json").write_text('{"barcode": {"births": [0.1')  # truncated
    broken[rid] = "results.json is corrupt"
    rid = fake_run(store, seed=2)
    (store.dir(rid) / "minima.safetensors").write_bytes(os.urandom(64))
    broken[rid] = "minima.safetensors is corrupt"
    rid = fake_run(store, seed=3)
    (store.dir(rid) / "config.json").write_text(json.dumps({"version": 99}))
    broken[rid] = "config.version=99"
    rid = fake_run(store, seed=4)
    cfg = read_json(store.dir(rid) / "config.json") | {"seed": 40}
    (store.dir(rid) / "config.json").write_text(json.dumps(cfg))
    broken[rid] = "hashes to"
    rid = fake_run(store, seed=5)
    (store.dir(rid) / "results.json").write_text("[1, 2]")
    broken[rid] = "results.json is corrupt"
    rid = fake_run(store, seed=6, stage="paths")
    p = store.dir(rid) / "paths.safetensors"
    p.write_bytes(p.read_bytes()[:-3])
    broken[rid] = "paths.safetensors is corrupt"
    rid = fake_run(store, seed=7)
    (store.dir(rid) / "config.json").unlink()
    broken[rid] = "no run"
    return broken


def test_list_reports_and_skips_corrupt_folders_and_the_rest_still_load(tmp_path):
    store = RunStore(tmp_path)
    good = [fake_run(store, seed=0), fake_run(store, seed=10, stage="minima")]
    broken = _corrupt_folders(store)
    (tmp_path / "notes").mkdir()  # not a run folder: ignored
    (tmp_path / "README.txt").write_text("hello")
    runs, bad = store.list()
    assert sorted(r.run_id for r in runs) == sorted(good)
    assert {name for name, _ in bad} == set(broken)
    for name, why in bad:
        assert broken[name] in why, (name, why)
    for rid in good:
        assert read_run(store, rid).run_id == rid
    done = next(r for r in runs if r.stage == "results")
    assert done.summary.to_score_sum == pytest.approx(0.7)


@pytest.mark.parametrize("which", ["results.json", "minima.safetensors", "paths.json"])
def test_load_of_a_corrupt_run_is_a_value_error(tmp_path, which):
    store = RunStore(tmp_path)
    rid = fake_run(store)
    (store.dir(rid) / which).write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match=re.escape(which) + " is corrupt"):
        read_run(store, rid)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: write_json(d / "results.json", {"barcode": {}}), r"missing key 'births'"),
        (lambda d: write_json(d / "results.json", {"summary": {}}), r"corrupt \(KeyError"),
        (
            lambda d: write_tensors(d / "minima.safetensors", {"thetas": torch.zeros(5, 2)}),
            r"minima\.safetensors does not match minima\.json",
        ),
        (
            lambda d: write_tensors(d / "paths.safetensors", {"points": torch.zeros(2, 2)}),
            r"corrupt \(KeyError",
        ),
        (
            lambda d: write_tensors(
                d / "paths.safetensors", {"points": torch.zeros(2, 2), "sizes": torch.tensor([9])}
            ),
            r"is corrupt \(RuntimeError",
        ),
    ],
)
def test_well_formed_files_with_wrong_content(tmp_path, edit, match):
    store = RunStore(tmp_path)
    rid = fake_run(store)
    edit(store.dir(rid))
    with pytest.raises(ValueError, match=match):
        read_run(store, rid)


def test_stage_is_the_prefix_of_finished_stages(tmp_path):
    store = RunStore(tmp_path)
    rid = fake_run(store)
    assert store.stage(rid) == "results"
    (store.dir(rid) / "minima.json").unlink()
    assert store.stage(rid) == "none"


def test_temp_files_are_never_read_and_cleaned_under_the_lock(tmp_path):
    store = RunStore(tmp_path)
    rid = fake_run(store, stage="minima")
    d = store.dir(rid)
    (d / ".tmp-abc123").write_text('{"barcode": ')  # a writer killed before its rename
    assert store.stage(rid) == "minima" and store.check(rid) == "minima"
    runs, bad = store.list()
    assert [r.run_id for r in runs] == [rid] and bad == []
    with store.lock(rid):
        assert store.clean_temp(rid) == 1
    assert tmp_files(d) == []


# --- the lock -----------------------------------------------------------------------------


def test_lock_refuses_or_waits(tmp_path):
    store = RunStore(tmp_path)
    rid = RunConfig().run_id
    with store.lock(rid):
        with pytest.raises(RunBusyError, match=rf"run {rid} is being computed by another process"):
            with store.lock(rid, wait=False):
                pass
        got = threading.Event()

        def second():
            with store.lock(rid):  # waits for the first
                got.set()

        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.3)
        assert not got.is_set()
    t.join(5)
    assert got.is_set()
    with store.lock(rid, wait=False):  # free again
        pass
    assert isinstance(RunBusyError("x"), ValueError)


# --- repair -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("broken", "kept"),
    [
        ("minima.safetensors", "none"),
        ("minima.json", "none"),
        ("paths.safetensors", "minima"),
        ("results.json", "paths"),
    ],
)
def test_repair_drops_the_first_bad_stage_and_later_ones(tmp_path, broken, kept):
    store = RunStore(tmp_path)
    rid = fake_run(store)
    d = store.dir(rid)
    (d / broken).write_bytes(b"{garbage")
    assert store.repair(store.config(rid)) == kept
    assert store.stage(rid) == kept and store.check(rid) == kept


def test_repair_rewrites_a_bad_config(tmp_path):
    store = RunStore(tmp_path)
    rid = fake_run(store)
    config = store.config(rid)
    (store.dir(rid) / "config.json").write_text("{")
    with pytest.raises(ValueError, match=r"config\.json is corrupt"):
        store.config(rid)
    assert store.repair(config) == "results"
    assert store.config(rid) == config


def test_files_get_the_umask_mode_so_shared_folders_stay_readable(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "f.json", {"v": 1})
        write_tensors(tmp_path / "t.safetensors", {"x": torch.ones(2)})
    finally:
        os.umask(old)
    for name in ("f.json", "t.safetensors"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644


def test_running_a_finished_run_only_reads_it(tmp_path):
    """No lock, no write: a finished run in a read-only shared folder still opens."""
    from core.runs.pipeline import run

    store = RunStore(tmp_path)
    rid = fake_run(store)
    before = {p.name: p.stat().st_mtime_ns for p in store.dir(rid).iterdir()}
    result = run(RunConfig(), store=store)
    assert result.run_id == rid and result.summary.to_score_sum == pytest.approx(0.7)
    assert {p.name: p.stat().st_mtime_ns for p in store.dir(rid).iterdir()} == before


def test_busy_is_true_only_while_someone_holds_the_lock(tmp_path):
    store = RunStore(tmp_path)
    rid = RunConfig().run_id
    assert not store.busy(rid)  # no folder yet
    with store.lock(rid):
        assert store.busy(rid)
        assert store.busy(rid)  # the probe took nothing
    assert not store.busy(rid)
    with store.lock(rid, wait=False):  # and left nothing behind
        pass
