"""The CLI: bad input is one line on stderr naming the bad value, exit code 2, and nothing
saved; good input runs, lists and shows.

Most cases call ``core.__main__.main`` in-process (fast); a few start ``python -m core`` to
check the real exit code and that stderr really is one line.
"""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_CLI_ARGS, fake_run

from core.__main__ import _parser, config_from_args, flag_of, main
from core.runs.config import FORMAT_VERSION, RunConfig, fields_of
from core.runs.store import RunStore, read_run

ROOT = Path(__file__).resolve().parents[1]
TINY = TINY_CLI_ARGS
# the same with cheaper settings (later flags win): a run of a few seconds
MICRO = [
    *TINY,
    "--n-train",
    "100",
    "--n-test",
    "50",
    "--steps",
    "20",
    "--path-steps",
    "20",
    "--path-points",
    "4",
]


def config_file(tmp_path: Path, content, name: str = "config.json") -> str:
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(p)


# (argv after --runs-dir, words that the one stderr line must contain)
BAD_ARGV = [
    (["run", "--width", "0"], "model.width=0"),
    (["run", "--width", "-4"], "model.width=-4"),
    (["run", "--depth", "0"], "model.depth=0"),
    (["run", "--minima", "1"], "train.minima=1"),
    (["run", "--minima", "1000"], "train.minima=1000"),
    (["run", "--width", "abc"], "argument --width: invalid int value: 'abc'"),
    (["run", "--dataset", "imagenet"], "'imagenet'"),
    (["run", "--arch", "lstm"], "'lstm'"),
    (["run", "--lr", "nan"], "train.lr=nan"),
    (["run", "--l2", "inf"], "train.l2=inf"),
    (["run", "--force-tol", "-1"], "paths.force_tol=-1.0"),
    (["run", "--n-train", "0"], "data.n_train=0"),
    (["run", "--path-points", "2"], "paths.n_points=2"),
    (["run", "--seed", "-1"], "seed=-1"),
    (["run", "--batch-size", "0"], "train.batch_size=0"),
    (["show", "../x"], "run id '../x'"),
    (["show", "/etc/passwd"], "run id '/etc/passwd'"),
    (["show", "..%2f..%2fetc"], "run id '..%2f..%2fetc'"),
    (["show", "abcdef012345"], "no run 'abcdef012345'"),
    (["toy", "no_such_toy"], "unknown toy name 'no_such_toy'"),
    (["run", "--executor", "ray"], "--path-groups is 1"),
    (["run", "--address", "127.0.0.1:1"], "--address '127.0.0.1:1' needs --executor ray"),
    (
        ["run", "--executor", "ray", "--path-groups", "2", "--address", "127.0.0.1:1"],
        "address='127.0.0.1:1': no Ray cluster answers there",
    ),
    (
        ["sweep", "--preset", "tiny", "--executor", "ray", "--address", "127.0.0.1:1"],
        "address='127.0.0.1:1': no Ray cluster answers there",
    ),
    (["run", "--path-groups", "0"], "paths.groups=0"),
    (
        ["run", "--model", "json:loads", "--align", "weight-matching"],
        "model.factory='json:loads' has no stated permutation group",
    ),
    (["run", "--align", "git-rebasin"], "'git-rebasin'"),
    ([], "the following arguments are required: command"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
]

BAD_CONFIG_FILES = [
    ({"model": {"width": "8"}}, "model.width='8'"),
    ({"model": {"width": True}}, "model.width=True"),
    ({"train": {"minima": 2.5}}, "train.minima=2.5"),
    ({"model": {"heads": 2}}, "unknown key config.model.heads"),
    (
        {"version": FORMAT_VERSION + 1, "model": {"heads": 2}},
        f"config.version={FORMAT_VERSION + 1} (a newer format)",
    ),
    (
        {"version": 1, "paths": {"lr": 0.05}},
        "config.version=1: written for an earlier path optimiser",
    ),
    ('{"train": {"lr": NaN}}', "train.lr=nan"),
    ('{"model": {"width": 8', "not valid JSON"),
    (b"\xff\xfe\x00\x01binary", "is not UTF-8 text"),
    ("[]", "config must be a JSON object, got list"),
]


def run_main(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc, out, err, words):
    assert rc == 2, (out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert words in lines[0], err


@pytest.mark.parametrize(("argv", "words"), BAD_ARGV, ids=[w for _, w in BAD_ARGV])
def test_bad_arguments(tmp_path, capsys, argv, words):
    runs = tmp_path / "runs"
    rc, out, err = run_main(["--runs-dir", str(runs), *argv], capsys)
    assert_one_line_error(rc, out, err, words)
    assert not runs.exists()  # nothing saved


@pytest.mark.parametrize(
    ("content", "words"), BAD_CONFIG_FILES, ids=[w for _, w in BAD_CONFIG_FILES]
)
def test_bad_config_files(tmp_path, capsys, content, words):
    path = config_file(tmp_path, content)
    rc, out, err = run_main(["--runs-dir", str(tmp_path / "runs"), "run", "--config", path], capsys)
    assert_one_line_error(rc, out, err, words)
    assert path in err  # which file


def test_mst_run_says_which_saddles_are_final(tmp_path, capsys):
    argv = ["--runs-dir", str(tmp_path), "run", *TINY, "--minima", "6", "--pairs", "mst"]
    rc, out, err = run_main(argv, capsys)
    assert rc == 0, err
    store = RunStore(tmp_path)
    run = read_run(store, store.list()[0][0].run_id)
    dens = np.asarray(run.paths.densities)
    final = int((dens >= 8).sum())
    assert run.summary.n_paths_final == final and 0 < final <= len(dens)
    if final < len(dens):  # the others are coarse: density 2
        assert f"{final} with final saddles" in out and set(dens[dens < 8]) == {2}
    else:
        assert "with final saddles" not in out


def test_config_file_that_is_missing_or_a_folder(tmp_path, capsys):
    for path, words in ((tmp_path / "nope.json", "No such file"), (tmp_path, "Is a directory")):
        rc, out, err = run_main(["run", "--config", str(path)], capsys)
        assert_one_line_error(rc, out, err, words)


def test_dataset_missing_offline(tmp_path, capsys):
    argv = ["run", *TINY, "--dataset", "mnist", "--data-root", str(tmp_path / "data")]
    rc, out, err = run_main(["--runs-dir", str(tmp_path / "runs"), *argv], capsys)
    assert_one_line_error(rc, out, err, "dataset 'mnist' was not found under data_root")
    assert not (tmp_path / "runs").exists()  # refused before anything is written


def test_network_too_large_is_refused_before_allocating(tmp_path, capsys):
    argv = ["run", *TINY, "--width", "4096", "--depth", "64"]
    rc, out, err = run_main(["--runs-dir", str(tmp_path / "runs"), *argv], capsys)
    assert_one_line_error(rc, out, err, "model.width=4096, model.depth=64")
    assert "exceeds the limit" in err
    assert not (tmp_path / "runs").exists()


def test_runs_dir_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    rc, out, err = run_main(["--runs-dir", str(f), "run", *TINY], capsys)
    assert_one_line_error(rc, out, err, "Not a directory")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(tmp_path, capsys):
    rc, out, err = run_main(["--runs-dir", str(tmp_path), "run", *TINY, "--device", "cuda"], capsys)
    assert_one_line_error(rc, out, err, "device='cuda' but CUDA is not available")


def test_all_starts_diverge(tmp_path, capsys):
    rc, out, err = run_main(["--runs-dir", str(tmp_path), "run", *TINY, "--lr", "1e30"], capsys)
    assert rc == 2
    last = err.strip().splitlines()[-1]  # after tqdm's bars and the per-start warnings
    assert last.startswith("error: all 3 starts diverged") and "train.lr (now 1e+30)" in last


def test_show_corrupt_and_unfinished_runs(tmp_path, capsys):

    from core.runs.store import RunStore

    store = RunStore(tmp_path)
    bad = fake_run(store, seed=1)
    (store.dir(bad) / "results.json").write_text('{"barcode": [')
    rc, out, err = run_main(["--runs-dir", str(tmp_path), "show", bad], capsys)
    assert_one_line_error(rc, out, err, "results.json is corrupt")
    part = fake_run(store, seed=2, stage="paths")
    rc, out, err = run_main(["--runs-dir", str(tmp_path), "show", part], capsys)
    assert_one_line_error(rc, out, err, f"run {part} is not finished (last stage: paths)")
    rc, out, err = run_main(["--runs-dir", str(tmp_path), "list"], capsys)
    assert rc == 0 and part in out and bad not in out
    assert f"{bad}: unreadable, skipped" in err


def test_run_list_show(tmp_path, capsys):
    rc, out, err = run_main(["--runs-dir", str(tmp_path), "run", *MICRO], capsys)
    assert rc == 0, err
    assert "TO-score (sum of finite segment lengths)" in out and "saved to" in out
    (run_id,) = [p.name for p in tmp_path.iterdir()]
    rc, listing, _ = run_main(["--runs-dir", str(tmp_path), "list"], capsys)
    assert rc == 0 and run_id in listing and "results" in listing
    rc, shown, _ = run_main(["--runs-dir", str(tmp_path), "show", run_id], capsys)
    assert rc == 0 and shown.splitlines()[0] == out.splitlines()[0]
    # the global options work after the command too
    rc, after, _ = run_main(["show", run_id, "--runs-dir", str(tmp_path), "-v"], capsys)
    assert rc == 0 and after == shown
    rc, listed, _ = run_main(["list", "--runs-dir", str(tmp_path)], capsys)
    assert rc == 0 and listed == listing
    rc, again, err = run_main(["--runs-dir", str(tmp_path), "run", *MICRO], capsys)
    assert rc == 0 and "minima" not in err  # finished: loaded, not computed again


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["run", "--width", "0"], "model.width=0"),
        (["run", "--config", "{cfg}"], "config.version=7 (a newer format)"),
    ],
)
def test_real_exit_code_and_one_stderr_line(tmp_path, argv, words):
    cfg = config_file(tmp_path, {"version": 7})
    argv = [a.replace("{cfg}", cfg) for a in argv]
    p = subprocess.run(
        [sys.executable, "-m", "core", "--runs-dir", str(tmp_path / "runs"), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("error: ") and words in p.stderr


def test_engine_flags_set_their_config_fields():
    from core.__main__ import _parser, config_from_args

    a = _parser().parse_args(
        [
            "run",
            "--path-batch-size",
            "0",
            "--path-precision",
            "bfloat16",
            "--compile",
            "--memory-mb",
            "512",
        ]
    )
    c = config_from_args(a)
    assert (c.paths.batch_size, c.paths.precision, c.paths.compile, c.memory_mb) == (
        None,
        "bfloat16",
        True,
        512,
    )
    d = config_from_args(_parser().parse_args(["run", "--path-batch-size", "64"]))
    assert (d.paths.batch_size, d.paths.precision, d.paths.compile, d.memory_mb) == (
        64,
        "float32",
        False,
        None,
    )


def test_bad_memory_budget_is_one_line(tmp_path, capsys):
    code = main(["--runs-dir", str(tmp_path), "run", "--memory-mb", "0", *MICRO])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "memory_mb=0" in err


def test_show_gives_the_forces_of_every_path_stopped_at_the_step_cap(tiny_runs):
    """Each pair that the step cap stopped is listed with its stored forces, and the bars it
    ends are called upper bounds; the other pairs are not listed."""
    import copy

    from core.__main__ import format_run

    run = copy.deepcopy(tiny_runs.run)
    p = run.paths
    p.status = np.full(len(p), "converged", dtype=object)
    p.status[1] = "step cap"
    p.force, p.climb_grad = np.full(len(p), 0.5), np.full(len(p), 0.25)
    run.summary.n_paths_step_cap = 1
    text = format_run(run)
    i, j = p.pairs[1]
    assert f"  pair ({i}, {j}): perpendicular 0.5, climbing 0.25" in text
    assert "1 paths stopped at the step cap" in text and text.count("  pair (") == 1


def _other_value(f, default):
    """A valid value of a config field other than its default, and its command-line words."""
    kind, md = str(f.type), f.metadata
    if kind == "bool":
        return True, []
    if md["choices"]:
        v = next(c for c in md["choices"] if c != default)
    elif kind.startswith("str"):
        v = f"{default or 'pkg.mod'}:other"
    elif kind.startswith("int"):
        v = 5 if default is None else default + 1
    else:
        v = default * 2 if default else 0.5
    return v, [str(v)]


def test_every_config_field_has_a_flag_that_sets_it():
    """The flags are generated from the config's declarations: each one sets its own field
    and no other, and every field (but the format version) has one."""
    base = RunConfig()
    before = {w: v for w, _, v in fields_of(base)}
    sections = ("data", "model", "train", "paths")
    assert len(before) == sum(len(dataclasses.fields(getattr(base, s))) for s in sections) + 3
    flags = [flag_of(f) for _, f, _ in fields_of(base)]
    assert len(set(flags)) == len(flags)
    for where, f, default in fields_of(base):
        value, words = _other_value(f, default)
        got = config_from_args(_parser().parse_args(["run", flag_of(f), *words]))
        after = {w: v for w, _, v in fields_of(got)}
        assert {w for w in before if after[w] != before[w]} == {where}
        assert after[where] == value
    # 0 stands for "none" where the declaration says so
    a = _parser().parse_args(["run", "--path-batch-size", "0", "--noisy-steps", "5"])
    assert config_from_args(a).paths.batch_size is None


def test_an_address_without_the_ray_executor_is_one_line(tmp_path, capsys):
    code = main(["--runs-dir", str(tmp_path), "sweep", "--preset", "tiny", "--address", "x:1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--address 'x:1' needs --executor ray" in err


def test_show_gives_the_aligned_scores_of_an_aligned_run(aligned_runs, capsys):
    run = aligned_runs.run
    rc, out, _ = run_main(["--runs-dir", str(aligned_runs.root), "show", run.run_id], capsys)
    b = run.aligned.barcode
    assert rc == 0
    assert (
        f"aligned to minimum 0 (weight matching): TO-score sum {b.to_score('sum'):.6g}, "
        f"longest {b.to_score('max'):.6g}, modulo the hidden units' symmetry"
    ) in out
    assert "one function" not in out  # its minima are distinct networks
