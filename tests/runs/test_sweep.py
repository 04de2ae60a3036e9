"""Sweeps: grid expansion, strict validation, the sweep file, caching by run id, the CLI."""

import json
import shutil

import pytest

from core.__main__ import main
from core.runs.config import RunConfig
from core.runs.presets import PRESETS, estimate_cost, get_preset
from core.runs.store import RunStore
from core.runs.sweep import (
    SweepSpec,
    expand,
    list_sweeps,
    load_sweep,
    parse_list,
    plan_sweep,
    run_sweep,
    sweep_configs,
    sweep_id,
)
from tests.conftest import tiny_config


def test_expansion_counts_order_and_fields():
    spec = SweepSpec(base=RunConfig(), widths=(4, 8, 16), depths=(1, 2), seeds=(0, 1, 2))
    configs = expand(spec)
    assert spec.size == len(configs) == 18
    assert len({c.run_id for c in configs}) == 18
    # seeds outermost, then depth, then width innermost
    assert [(c.seed, c.model.depth, c.model.width) for c in configs[:7]] == [
        (0, 1, 4),
        (0, 1, 8),
        (0, 1, 16),
        (0, 2, 4),
        (0, 2, 8),
        (0, 2, 16),
        (1, 1, 4),
    ]
    assert all(c.train == RunConfig().train and c.data == RunConfig().data for c in configs)


def test_empty_axes_keep_the_base_and_regimes_carry_their_lr():
    base = RunConfig().replace(model={"width": 5}, seed=7)
    configs = expand(SweepSpec(base=base, regimes=("anneal", "constant:0.001")))
    assert [(c.train.regime, c.train.lr) for c in configs] == [
        ("anneal", base.train.lr),
        ("constant", 0.001),
    ]
    assert {(c.model.width, c.seed) for c in configs} == {(5, 7)}


def test_shared_points_of_several_grids_run_once():
    base = RunConfig()
    widths = SweepSpec(base=base, widths=(4, 8), depths=(1,))
    depths = SweepSpec(base=base, widths=(8,), depths=(1, 2))
    configs = sweep_configs([widths, depths])
    assert [(c.model.width, c.model.depth) for c in configs] == [(4, 1), (8, 1), (8, 2)]
    assert sweep_id([widths, depths]) != sweep_id([depths, widths]) != sweep_id(widths)


def test_ids_of_stored_sweeps_survive_new_config_fields():
    """The presets' sweep and run ids, as stored by earlier versions: fields added since are
    left out of the hashes at their defaults (``LATER_DEFAULTS``, ``LATER_IN_SWEEPS``)."""

    def before_splits(specs):  # as stored: paths.splits came later, and 0 was its behaviour
        return [
            s.__class__(**{**vars(s), "base": s.base.replace(paths={"splits": 0})}) for s in specs
        ]

    specs = before_splits(get_preset("cpu-reproduction").specs)
    assert sweep_id(specs) == "a68a1a3577a3"
    assert sweep_id(before_splits(get_preset("cpu-resolution").specs)) == "ddaad2fe02ff"
    assert sweep_id(get_preset("cpu-reproduction").specs) != "a68a1a3577a3"  # splits today
    changed = [
        s.__class__(**{**vars(s), "base": s.base.replace(paths={"check_every": 5})}) for s in specs
    ]
    assert sweep_id(changed) != "a68a1a3577a3"


def test_spec_json_round_trip_keeps_the_id():
    spec = SweepSpec(base=tiny_config(4), widths=(4, 8), seeds=(0, 1), regimes=("constant:0.01",))
    again = SweepSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and sweep_id(again) == sweep_id(spec)
    assert len(sweep_id(spec)) == 12


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"widths": (4, 4)}, "widths=.*must not repeat"),
        ({"widths": (0,)}, "widths entry 0"),
        ({"depths": (1.5,)}, "depths entry 1.5"),
        ({"seeds": (-1,)}, "seeds entry -1"),
        ({"widths": "48"}, "widths='48': must be a list"),
        ({"regimes": ("warm",)}, "regimes entry 'warm'"),
        ({"regimes": ("constant:fast",)}, "learning rate 'fast'"),
        ({"regimes": ("constant:-1",)}, "must be > 0"),
        ({"datasets": ("imagenet",)}, "datasets entry 'imagenet'"),
        ({"archs": ("vit",)}, "archs entry 'vit'"),
        ({"widths": (5000,)}, r"model.width=5000"),
        ({"widths": tuple(range(1, 60)), "seeds": tuple(range(40))}, "exceeds the limit"),
    ],
)
def test_bad_specs_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SweepSpec(base=RunConfig(), **kwargs)


def test_from_dict_rejects_unknown_keys_and_bad_base():
    with pytest.raises(ValueError, match="unknown key sweep.width"):
        SweepSpec.from_dict({"width": [4]})
    with pytest.raises(ValueError, match="train.lr"):
        SweepSpec.from_dict({"base": {"train": {"lr": -1}}})


def test_parse_list():
    assert parse_list("4, 8,16", int, "--widths") == (4, 8, 16)
    with pytest.raises(ValueError, match="--widths='4,x': 'x' is not a valid int"):
        parse_list("4,x", int, "--widths")
    with pytest.raises(ValueError, match="empty entry"):
        parse_list("4,,8", int, "--widths")


@pytest.fixture
def store(tiny_runs, tmp_path):
    """A copy of the test run's tiny run store (widths 4 and 8 at seed 0, finished)."""
    shutil.copytree(tiny_runs.root, tmp_path / "runs")
    return RunStore(tmp_path / "runs")


def test_sweep_reuses_finished_runs_and_records_itself(store, tiny_runs):
    spec = SweepSpec(base=tiny_config(8), widths=(4, 8))
    assert {c.run_id for c in expand(spec)} == set(tiny_runs.ids)
    assert [stage for _, stage in plan_sweep(spec, store)] == ["results", "results"]
    events = []
    res = run_sweep(spec, store, events.append, name="test")
    assert (res.new, res.failed) == ([], {})
    assert res.reused == [tiny_runs.other.run_id, tiny_runs.run.run_id]
    assert [(e.index, e.stage, e.fraction) for e in events] == [
        (0, "cached", 0.5),
        (1, "cached", 1.0),
    ]
    rec = load_sweep(store, res.sweep_id)
    assert rec.run_ids == res.run_ids and rec.name == "test" and rec.specs == (spec,)
    assert (store.root / "sweeps" / f"{res.sweep_id}.json").exists()
    assert [r.sweep_id for r in list_sweeps(store)] == [res.sweep_id]


@pytest.mark.slow
def test_a_new_run_is_computed_once(store):
    spec = SweepSpec(
        base=tiny_config(8).replace(train={"minima": 3}, paths={"steps": 40}), widths=(4,)
    )
    first = run_sweep(spec, store)
    second = run_sweep(spec, store)
    assert (len(first.new), len(first.reused)) == (1, 0)
    assert (len(second.new), len(second.reused)) == (0, 1)
    rec = load_sweep(store, first.sweep_id)
    assert [(i["new"], i["reused"]) for i in rec.invocations] == [(1, 0), (0, 1)]


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(store, monkeypatch, tiny_runs):
    import core.runs.sweep

    real = core.runs.sweep.run

    def flaky(config, **kw):
        if config.model.width == 5:
            raise ValueError("model.width=5: broken on purpose")
        return real(config, **kw)

    monkeypatch.setattr(core.runs.sweep, "run", flaky)
    res = run_sweep(SweepSpec(base=tiny_config(8), widths=(5, 8)), store)
    assert list(res.failed.values()) == ["ValueError: model.width=5: broken on purpose"]
    assert res.reused == [tiny_runs.run.run_id]
    assert load_sweep(store, res.sweep_id).errors == res.failed


def test_load_sweep_refuses_bad_ids_and_tampered_files(store):
    with pytest.raises(ValueError, match="not 12 lowercase hex"):
        load_sweep(store, "../etc")
    with pytest.raises(ValueError, match="no sweep"):
        load_sweep(store, "0123456789ab")
    res = run_sweep(SweepSpec(base=tiny_config(8)), store)
    path = store.root / "sweeps" / f"{res.sweep_id}.json"
    d = json.loads(path.read_text())
    d["specs"][0]["widths"] = [8]
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="hash to"):
        load_sweep(store, res.sweep_id)


def test_cli_sweep_prints_the_id_and_reuses_runs(store, tmp_path, capsys):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(tiny_config(8).to_json())
    rc = main(["--runs-dir", str(store.root), "sweep", "--config", str(cfg), "--widths", "4,8"])
    out = capsys.readouterr().out
    sid = sweep_id(SweepSpec(base=tiny_config(8), widths=(4, 8)))
    assert rc == 0
    assert f"sweep {sid}: 2 runs, 0 new, 2 re-used, 0 failed" in out
    assert out.count(": cached") == 2


def test_cli_sweep_bad_input_is_one_line_and_code_2(store, capsys):
    rc = main(["--runs-dir", str(store.root), "sweep", "--widths", "4,x"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--widths='4,x'" in err
    assert main(["--runs-dir", str(store.root), "sweep", "--preset", "nope"]) == 2
    assert "preset='nope'" in capsys.readouterr().err


def test_presets_are_valid_and_costed():
    assert {"fc-mnist", "cnn-cifar10", "cnn-svhn", "resnet-cifar10", "cpu-digits"} <= set(PRESETS)
    cost = estimate_cost("tiny")
    assert cost["runs"] == 4 and cost["parameters"] == (310, 460)  # 64*4+4+4*10+10 = 310
    assert cost["examples per training step"] == 3 * 200
    assert get_preset("cnn-cifar10").first.model.arch == "cnn"
    with pytest.raises(ValueError, match="preset='x'"):
        get_preset("x")


def test_cli_dry_run_with_a_preset_lists_the_runs(tmp_path, capsys):
    assert main(["--runs-dir", str(tmp_path), "sweep", "--preset", "tiny", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 runs, 0 already finished" in out and out.count(" TFLOP") == 4
