"""Reliability and security: bad inputs to the library and the dashboard, diverging minima,
corrupt run folders, no pickle anywhere, isolated dashboard sessions, server settings.

The CLI's share of the bad-input corpus is in test_cli.py, the config's in runs/test_config.py,
the run store's in runs/test_store.py; crash and concurrency tests are in runs/test_crash.py.
"""

import ast
import importlib.util
import math
import resource
import shutil
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import BAD_IDS
from streamlit.testing.v1 import AppTest

from core import landscape_of
from core.engine.minima import Minima, MinimaOptions, find_minima
from core.engine.paths import Paths
from core.nets.data import load_dataset
from core.nets.models import build_model
from core.runs.config import DataConfig, ModelConfig, PathConfig, RunConfig, TrainConfig
from core.runs.files import read_json, write_json
from core.runs.pipeline import check_size, objectives, run
from core.runs.record import Metrics, Run
from core.runs.store import RunStore, read_run, write_stage

ROOT = Path(__file__).resolve().parents[1]
TINY = RunConfig(
    data=DataConfig(name="digits", n_train=200, n_test=100),
    model=ModelConfig(arch="mlp", width=4, depth=1),
    train=TrainConfig(minima=3, steps=100),
    paths=PathConfig(steps=60),
    device="cpu",
)
MICRO = TINY.replace(  # a network run of a few seconds
    data={"n_train": 100, "n_test": 50},
    train={"steps": 20},
    paths={"steps": 20, "n_points": 4, "max_points": 6},
)

# --- the library's share of the bad-input corpus -------------------------------------------

LIBRARY = [
    (lambda tmp: load_dataset("imagenet"), r"unknown dataset name 'imagenet'"),
    (lambda tmp: load_dataset("digits", n_train=0), r"n_train=0 must be between 1 and"),
    (lambda tmp: load_dataset("digits", n_test=10**6), r"n_test=1000000 must be between"),
    (lambda tmp: load_dataset("digits", n_train=2.5), r"n_train must be an int, got 2\.5"),
    (
        lambda tmp: load_dataset("mnist", data_root=tmp / "data"),
        r"dataset 'mnist' was not found under data_root '.*data'",
    ),
    (
        lambda tmp: load_dataset("cifar10", data_root=tmp / "data"),
        r"dataset 'cifar10' was not found",
    ),
    (lambda tmp: build_model("lstm", 8, 1, (1, 8, 8), 10), r"arch must be one of .*'lstm'"),
    (lambda tmp: build_model("mlp", 0, 1, (1, 8, 8), 10), r"width must be a positive int, got 0"),
    (lambda tmp: build_model("mlp", 8, -1, (1, 8, 8), 10), r"depth must be .*got -1"),
    (lambda tmp: build_model("mlp", True, 1, (1, 8, 8), 10), r"width must be .*got True"),
    (
        lambda tmp: check_size(TINY.replace(model={"width": 4096, "depth": 64}), (1, 8, 8), 10),
        r"model\.width=4096, model\.depth=64: 1,0\d\d,\d{3},\d{3} parameters .*exceeds the limit",
    ),
    (
        lambda tmp: check_size(
            TINY.replace(model={"width": 64}, train={"minima": 256}, paths={"max_points": 4096}),
            (1, 8, 8),
            10,
        ),
        r"train\.minima=256, paths\.max_points=4096: 32,640 paths .* use fewer minima",
    ),
    (
        lambda tmp: run(
            TINY.replace(data={"name": "svhn", "data_root": str(tmp)}), store=RunStore(tmp / "runs")
        ),
        r"dataset 'svhn' was not found",
    ),
    (lambda tmp: read_run(RunStore(tmp), "../../etc"), r"run id '\.\./\.\./etc' is not 12"),
    (lambda tmp: read_run(RunStore(tmp), "0123456789ab"), r"no run '0123456789ab'"),
    (
        lambda tmp: find_minima(lambda x: x.sum(1) * math.nan, torch.zeros(3, 2)),
        r"all 3 starts diverged; first reason: non-finite loss",
    ),
    (lambda tmp: find_minima(lambda x: x.sum(1), torch.zeros(0, 2)), r"starts is empty"),
]


@pytest.mark.parametrize(("call", "match"), LIBRARY, ids=[m[:40] for _, m in LIBRARY])
def test_library_bad_input_is_one_value_error(tmp_path, call, match):
    with pytest.raises(ValueError, match=match):
        call(tmp_path)
    assert not (tmp_path / "runs").exists()  # nothing written for a refused run


def test_too_large_network_is_refused_before_allocating():
    """1e9 parameters would be 4 GB; the check builds the network on the meta device."""
    big = TINY.replace(model={"arch": "resnet", "width": 4096, "depth": 64})
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"model\.width=4096.*exceeds the limit of 50,000,000"):
        check_size(big, (3, 32, 32), 100)
    assert time.perf_counter() - t0 < 10
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 200_000  # < 200 MB more
    assert check_size(TINY, (1, 8, 8), 10) == 64 * 4 + 4 + 4 * 10 + 10


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_cuda():
    with pytest.raises(ValueError, match=r"device='cuda' but CUDA is not available"):
        objectives(TINY.replace(device="cuda"))


# --- divergence ----------------------------------------------------------------------------


def double_well(x):
    """(x0^2 - 1)^2 + x1^2: minima (+-1, 0) at 0, saddle (0, 0) at 1; NaN where x0 > 5."""
    f = (x[:, 0] ** 2 - 1) ** 2 + x[:, 1] ** 2
    return torch.where(x[:, 0] > 5, torch.full_like(f, math.nan), f)


def test_diverged_start_is_left_out_with_its_reason():
    starts = torch.tensor([[-1.5, 0.2], [8.0, 0.0], [1.3, -0.1]], dtype=torch.float64)
    opts = MinimaOptions(lr=0.05, steps=2000, grad_tol=1e-6, merge_distance=1e-2)
    found = find_minima(double_well, starts, opts)
    assert list(found.failed) == [1] and "non-finite loss" in found.failed[1]
    assert found.start_of[1] == -1 and len(found) == 2
    land = landscape_of(double_well, starts, minima=opts, paths={"steps": 200})
    bars = land.barcode
    assert len(bars) == 2 and bars.n_essential == 1
    assert bars.to_score("sum") == pytest.approx(1.0, abs=1e-3)  # the saddle at the origin


def poison(monkeypatch, rows):
    """Make the run's starts ``rows`` non-finite, so their training diverges at once."""
    import core.runs.pipeline as pipeline

    real = pipeline.objectives

    def poisoned(config, device=None):
        train_obj, path_obj = real(config, device)
        init = train_obj.init

        def bad_init(m, seed):
            starts = init(m, seed).clone()
            starts[rows] = math.inf
            return starts

        train_obj.init = bad_init
        return train_obj, path_obj

    monkeypatch.setattr(pipeline, "objectives", poisoned)


def test_network_run_with_diverged_minima_completes(tmp_path, monkeypatch, capsys):
    from core.__main__ import main

    poison(monkeypatch, [1])
    store = RunStore(tmp_path)
    result = run(MICRO, store=store)
    failed = result.minima.failed
    assert list(failed) == [1] and "non-finite loss" in failed[1]
    assert result.summary.n_failed == 1
    assert result.minima.start_of[1] == -1
    k = len(result.minima.values)
    assert k == 2 and len(result.barcode) == k and result.minima.thetas.shape[0] == k
    assert read_json(store.dir(MICRO.run_id) / "minima.json")["failed"] == {"1": failed[1]}
    assert main(["--runs-dir", str(tmp_path), "show", MICRO.run_id]) == 0
    out = capsys.readouterr().out
    assert "1 failed" in out and "start 1 left out of the barcode: non-finite loss" in out
    from core.views.dashboard import convergence_words

    assert any("start 1: non-finite loss" in line for line in convergence_words(result))


def test_a_single_surviving_minimum_still_gives_a_barcode(tmp_path, monkeypatch):
    poison(monkeypatch, [0, 2])
    result = run(MICRO, store=RunStore(tmp_path))
    assert result.summary.n_failed == 2 and result.summary.n_paths == 0
    assert len(result.barcode) == 1 and result.barcode.n_essential == 1
    assert result.summary.to_score_sum == 0 and result.paths.points == []


def test_results_stage_tolerates_float32_rounding_of_a_saddle(tmp_path):
    """A saddle at an endpoint, evaluated in another float32 batch, read 1.2e-7 below it:
    a run resumed after its paths stage still gets a barcode, and that bar has length 0."""
    store = RunStore(tmp_path)
    values = np.array([0.8674233555793762, 1.1160762310028076])
    rec = Run(
        MICRO.run_id,
        MICRO,
        Minima(
            torch.zeros(2, 3), values, np.zeros(2), ["minimum"] * 2, np.zeros(2, int), np.arange(2)
        ),
        Metrics(*(np.zeros(2),) * 4),
        seconds={"minima": 0.0, "paths": 0.0},
    )
    rec.paths = Paths(
        pairs=np.array([[0, 1]]),
        points=[torch.zeros(3, 3)],
        saddles=np.array([1.116076111793518]),
        straight=np.array([2.0]),
        densities=np.array([8]),
        status=np.array(["converged"], dtype=object),
        force=np.zeros(1),
        climb_grad=np.zeros(1),
        scale=np.ones(1),
        steps=np.array([10]),
        history_steps=np.array([0]),
        history=np.array([[1.2]]),
        climb=np.array([1]),
        certified=np.array([True]),
        peak_value=np.array([1.116076111793518]),
        eigs=np.array([[-1.0, 1.0]]),
        peak_grad=np.zeros(1),
    )
    with store.lock(MICRO.run_id):
        write_json(store.dir(MICRO.run_id) / "config.json", MICRO.to_dict())
        write_stage(store, rec, "minima")
        write_stage(store, rec, "paths")
    assert list(run(MICRO, store=store).barcode.lengths) == [math.inf, 0.0]


# --- storage -------------------------------------------------------------------------------

PICKLERS = {"pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def _python_sources() -> list[Path]:
    """Every .py file of the program: not the tests (test_data.py writes CIFAR's pickled
    format on purpose), hidden folders such as .venv, or run stores."""
    skip = {"runs", "tests"}
    tops = [p for p in ROOT.iterdir() if not p.name.startswith(".") and p.name not in skip]
    files = [p for t in tops for p in ([t] if t.is_file() else t.rglob("*.py"))]
    return sorted(p for p in files if p.suffix == ".py")


def _unpickling_calls(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            found += [f"import {n}" for n in names if n.split(".")[0] in PICKLERS]
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = ast.unparse(node.func.value)
        name = node.func.attr
        kw = {k.arg: ast.unparse(k.value) for k in node.keywords}
        if owner == "torch" and name == "load" and kw.get("weights_only") != "True":
            found.append("torch.load without weights_only=True")
        if owner == "torch" and name == "save":
            found.append("torch.save (a pickle)")
        if owner in ("np", "numpy") and name == "load" and kw.get("allow_pickle") != "False":
            if "allow_pickle" in kw:
                found.append("np.load with allow_pickle")
        if name in ("read_pickle", "to_pickle"):
            found.append(f"{owner}.{name}")
    return found


def test_no_pickle_is_ever_loaded():
    sources = _python_sources()
    assert ROOT / "app.py" in sources and ROOT / "core" / "runs" / "store.py" in sources
    bad = {}
    for path in sources:
        hits = _unpickling_calls(ast.parse(path.read_text(), str(path)))
        if hits:
            bad[str(path.relative_to(ROOT))] = hits
    assert bad == {}
    # the checker itself catches what it should
    sample = "import pickle\nimport torch\ntorch.load(f)\nnp.load(f, allow_pickle=True)\n"
    assert len(_unpickling_calls(ast.parse(sample))) == 3
    assert _unpickling_calls(ast.parse("torch.load(f, weights_only=True)")) == []


def test_a_run_folder_holds_only_json_and_safetensors(tiny_runs):
    d = tiny_runs.store.dir(tiny_runs.run.run_id)
    names = {p.name for p in d.iterdir() if not p.name.startswith(".")}
    stages = {"minima.json", "minima.safetensors", "paths.json", "paths.safetensors"}
    assert {"config.json", "results.json"} | stages <= names
    # beside the stages only JSON (saved escape results: escape-<settings hash>.json)
    assert all(n.endswith((".json", ".safetensors")) for n in names), names
    assert {p.name for p in d.iterdir() if p.name.startswith(".")} <= {".lock"}


def copy_with_a_corrupt_run(tiny_runs, dest: Path) -> tuple[str, str]:
    """dest gets the width-8 run intact and the width-4 run with garbage tensors."""
    good, bad = tiny_runs.run.run_id, tiny_runs.other.run_id
    for rid in (good, bad):
        shutil.copytree(tiny_runs.root / rid, dest / rid)
    (dest / bad / "minima.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    return good, bad


def test_corrupt_real_run_is_reported_and_skipped_and_the_other_opens(tiny_runs, tmp_path):
    good, bad = copy_with_a_corrupt_run(tiny_runs, tmp_path)
    store = RunStore(tmp_path)
    runs, skipped = store.list()
    assert [r.run_id for r in runs] == [good]
    assert [name for name, _ in skipped] == [bad] and "minima.safetensors" in skipped[0][1]
    assert read_run(store, good).barcode == tiny_runs.run.barcode
    with pytest.raises(ValueError, match=r"minima\.safetensors is corrupt"):
        read_run(store, bad)


def test_running_a_corrupt_run_again_computes_the_bad_stage_again(tiny_runs, tmp_path):
    good, _ = copy_with_a_corrupt_run(tiny_runs, tmp_path)
    store = RunStore(tmp_path)
    (store.dir(good) / "results.json").write_text('{"barcode": {"births": [0.1')  # truncated
    assert good in [name for name, _ in store.list()[1]]  # reported as unreadable
    again = run(tiny_runs.run.config, store=store)  # computes the results stage again
    assert again.barcode == tiny_runs.run.barcode
    assert again.summary.to_score_sum == tiny_runs.run.summary.to_score_sum
    assert good in [r.run_id for r in store.list()[0]]


# --- dashboard -----------------------------------------------------------------------------


def open_page(page: str, **state) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if page != "home":
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# (widget settings on the run page, words of the st.error); cheap training settings first so
# that nothing long could start even if a case were accepted
DASHBOARD_FORM = [
    ({"f_paths_n_points": 2}, "paths.n_points=2"),
    ({"f_paths_n_points": 12, "f_paths_max_points": 8}, "paths.max_points=8"),
    ({"f_model_width": 5000}, "model.width=5000"),
    ({"f_train_grad_tol": 0.0}, "train.grad_tol=0.0"),
    ({"f_paths_force_tol": 0.0}, "paths.force_tol=0.0"),
    ({"f_data_data_root": ""}, "data.data_root=''"),
    ({"f_model_width": 4096, "f_model_depth": 64}, "model.width=4096, model.depth=64"),
    ({"f_data_name": "mnist", "f_data_data_root": "{tmp}/data"}, "dataset 'mnist' was not found"),
]
CHEAP = {
    "f_model_width": 4,
    "f_model_depth": 1,
    "f_train_minima": 3,
    "f_train_steps": 5,
    "f_paths_steps": 5,
    "f_data_n_train": 100,
    "f_data_n_test": 50,
}


def form_widget(at: AppTest, key: str):
    if key == "f_data_name":
        return at.selectbox(key=key)
    if key == "f_data_data_root":
        return at.text_input(key=key)
    return at.number_input(key=key)


@pytest.mark.slow
def test_run_form_shows_one_error_per_bad_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("BARCODES_RUNS_DIR", str(tmp_path / "runs"))
    at = open_page("run")
    defaults = {}
    for settings, words in DASHBOARD_FORM:
        for key, value in (CHEAP | settings).items():
            defaults.setdefault(key, form_widget(at, key).value)
            if isinstance(value, str):
                value = value.replace("{tmp}", str(tmp_path))
            form_widget(at, key).set_value(value)
        at.button[0].click()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert len(at.error) == 1 and words in at.error[0].value, (words, at.error)
        for key in settings:  # back to the defaults for the next case
            form_widget(at, key).set_value(defaults[key])
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.slow
def test_dashboard_skips_a_corrupt_run_and_a_forged_run_id(tiny_runs, tmp_path, monkeypatch):
    good, bad = copy_with_a_corrupt_run(tiny_runs, tmp_path)
    monkeypatch.setenv("BARCODES_RUNS_DIR", str(tmp_path))
    for forged in (bad, "../../etc", "/etc/passwd"):
        at = open_page("home", run_id=forged)  # AppTest shows the sidebar of the first page
        warnings = [w.value for w in at.sidebar.warning]
        assert warnings and all(bad in w and "unreadable" in w for w in warnings), warnings
        assert at.session_state["run_id"] == good  # the picker fell back to a readable run
        at.switch_page("pages/barcode.py").run()
        assert not at.exception, [e.value for e in at.exception]
        shown = [m.value for m in at.metric if m.label == "TO-score (sum)"]
        assert shown == [f"{tiny_runs.run.summary.to_score_sum:.6g}"]


@pytest.mark.slow
def test_two_dashboard_sessions_do_not_share_selections(runs_env):
    a = open_page("barcode", run_id=runs_env.run.run_id)
    b = open_page("barcode", run_id=runs_env.other.run_id)
    a.selectbox(key="minimum_box").set_value(2).run()
    b.run()
    assert a.session_state["run_id"] == runs_env.run.run_id
    assert b.session_state["run_id"] == runs_env.other.run_id
    assert a.session_state["minimum"] == 2 and b.session_state["minimum"] == 0
    for at, r in ((a, runs_env.run), (b, runs_env.other)):
        shown = {m.label: m.value for m in at.metric}
        assert shown["TO-score (sum)"] == f"{r.summary.to_score_sum:.6g}"
        assert shown["Distinct minima"] == str(r.summary.n_minima)
        assert r.run_id in "\n".join(c.value for c in at.caption)


# --- server --------------------------------------------------------------------------------


def test_server_is_local_with_xsrf_and_small_uploads():
    conf = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    server = conf["server"]
    assert server["address"] == "127.0.0.1"
    assert server["enableXsrfProtection"] is True
    assert 1 <= server["maxUploadSize"] <= 10  # MB: the only upload is a config file
    assert conf["browser"]["gatherUsageStats"] is False
    assert conf["client"]["showErrorDetails"] in ("none", False)  # no tracebacks to visitors
    makefile = (ROOT / "Makefile").read_text()
    assert "0.0.0.0" not in makefile and "--server.address 127.0.0.1" in makefile


def _test_module(path: str):
    spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / "tests" / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_corpus_size():
    cli, config = _test_module("test_cli.py"), _test_module("runs/test_config.py")
    BAD_ARGV, BAD_CONFIG_FILES, BAD_DICTS = cli.BAD_ARGV, cli.BAD_CONFIG_FILES, config.BAD_DICTS

    sizes = [
        len(LIBRARY),
        len(DASHBOARD_FORM),
        len(BAD_ARGV),
        len(BAD_CONFIG_FILES),
        len(BAD_DICTS),
        len(BAD_IDS),
    ]
    assert sum(sizes) >= 30 and np.all(np.array(sizes) > 0)
