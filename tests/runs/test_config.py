"""RunConfig: strict JSON round trip, stable run ids, and one clear ValueError per bad value.

The property test feeds RunConfig.from_dict with generated dicts, valid and invalid values
mixed field by field: every one either gives a config whose JSON round-trips exactly (same
config, same JSON, same run id) or raises ValueError. Nothing else may escape.
"""

import dataclasses
import json
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.engine.options import PAIR_STRATEGIES as PAIRS
from core.engine.options import PRECISIONS, REGIMES, MinimaOptions, PathOptions
from core.runs.config import (
    ACTIVATIONS,
    ARCHITECTURES,
    DATASETS,
    DEVICES,
    FORMAT_VERSION,
    DataConfig,
    ModelConfig,
    RunConfig,
)
from core.runs.pipeline import network


def test_default_round_trip_and_id():
    c = RunConfig()
    again = RunConfig.from_json(c.to_json())
    assert again == c and again.to_json() == c.to_json() and again.run_id == c.run_id
    assert len(c.run_id) == 12 and set(c.run_id) <= set("0123456789abcdef")


def test_every_field_changes_the_id():
    base = RunConfig()
    changed = [
        base.replace(data={"n_train": 100}),
        base.replace(model={"width": 9}),
        base.replace(model={"activation": "tanh"}),
        base.replace(train={"lr": 0.03}),
        base.replace(paths={"steps": 1501}),
        base.replace(seed=1),
        base.replace(device="cpu"),
        base.replace(paths={"precision": "bfloat16"}),
        base.replace(paths={"compile": True}),
        base.replace(memory_mb=256),
    ]
    assert len({c.run_id for c in changed} | {base.run_id}) == len(changed) + 1


def test_fields_added_later_keep_the_ids_of_older_configs():
    """paths.precision, paths.compile and memory_mb at their defaults are left out of the hash
    (format 2 ids, printed when format 2 was introduced); so are later fields at the value
    that configs written before them had (paths.splits: 0, no splitting)."""
    before = RunConfig().replace(paths={"splits": 0})
    assert before.run_id == "11cd86a9510e"
    assert before.replace(model={"width": 32, "depth": 2}).run_id == "2468a3f6039b"
    assert RunConfig().run_id != before.run_id  # splitting changes what a run computes
    record = json.loads(before.to_json())
    del record["paths"]["splits"]  # a run stored before the field
    assert RunConfig.from_record(record).run_id == "11cd86a9510e"
    assert RunConfig.from_record(record).paths.splits == 0  # what it computed, not today's 2
    old = json.loads(RunConfig().to_json())
    del old["paths"]["precision"], old["paths"]["compile"], old["memory_mb"]
    assert RunConfig.from_dict(old) == RunConfig()


def test_tanh_round_trips_and_has_its_own_id_while_relu_keeps_the_old_one():
    relu = RunConfig().replace(paths={"splits": 0})
    assert relu.model.activation == "relu" and relu.run_id == "11cd86a9510e"  # before the field
    assert relu.replace(model={"activation": "relu"}).run_id == relu.run_id
    assert "activation" not in relu.canonical()["model"]  # left out of the hash at its default
    tanh = relu.replace(model={"activation": "tanh"})
    again = RunConfig.from_json(tanh.to_json())
    assert again == tanh and again.model.activation == "tanh"
    assert again.run_id == tanh.run_id != relu.run_id
    assert json.loads(tanh.to_json())["model"]["activation"] == "tanh"
    assert tanh.model.network == "mlp width 8 depth 1 tanh"
    assert relu.model.network == "mlp width 8 depth 1"
    cnn = tanh.replace(model={"arch": "cnn", "depth": 2})
    assert cnn.model.network == "cnn width 8 depth 2 tanh" and cnn.run_id != tanh.run_id


def test_the_run_network_takes_the_activation():
    for arch in ("mlp", "cnn", "resnet"):
        cfg = RunConfig().replace(model={"arch": arch, "activation": "tanh", "depth": 2})
        model, relu = network(cfg, (1, 8, 8), 10), network(RunConfig(), (1, 8, 8), 10)
        assert model.activation == "tanh" and relu.activation == "relu"
    mlp = network(RunConfig().replace(model={"activation": "tanh"}), (1, 8, 8), 10)
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    h = torch.tanh(mlp.hidden[0](x.flatten(1)))
    torch.testing.assert_close(mlp(x), mlp.head(h))


def test_int_for_a_float_field_is_the_same_config():
    a = RunConfig.from_dict({"train": {"lr": 1}, "paths": {"force_tol": 2}})
    b = RunConfig.from_dict({"train": {"lr": 1.0}, "paths": {"force_tol": 2.0}})
    assert a == b and a.run_id == b.run_id and a.to_json() == b.to_json()
    assert isinstance(a.train.lr, float)
    assert RunConfig.from_dict({"train": {"l2": -0.0}}).run_id == (
        RunConfig.from_dict({"train": {"l2": 0.0}}).run_id
    )


# (dict given to from_dict, a regex the message must match: it names the field and the value)
BAD_DICTS = [
    ({"model": {"width": 0}}, r"model\.width=0"),
    ({"model": {"width": -3}}, r"model\.width=-3"),
    ({"model": {"depth": 0}}, r"model\.depth=0"),
    ({"model": {"width": 10**6}}, r"model\.width=1000000"),
    ({"model": {"width": "8"}}, r"model\.width='8'"),
    ({"model": {"width": True}}, r"model\.width=True"),
    ({"model": {"width": 8.0}}, r"model\.width=8\.0"),
    ({"train": {"minima": 1}}, r"train\.minima=1\b"),
    ({"train": {"minima": -2}}, r"train\.minima=-2"),
    ({"train": {"minima": 2.5}}, r"train\.minima=2\.5"),
    ({"data": {"name": "imagenet"}}, r"data\.name='imagenet'"),
    ({"model": {"arch": "lstm"}}, r"model\.arch='lstm'"),
    ({"optimizer": "sgd"}, r"unknown key config\.optimizer"),
    ({"model": {"heads": 2}}, r"unknown key config\.model\.heads"),
    ({"train": {"lr": math.nan}}, r"train\.lr=nan"),
    ({"train": {"lr": math.inf}}, r"train\.lr=inf"),
    ({"train": {"l2": math.inf}}, r"train\.l2=inf"),
    ({"train": {"l2": -1e-4}}, r"train\.l2=-0\.0001"),
    ({"train": {"lr": 10**400}}, r"train\.lr=1000.*characters"),
    ({"paths": {"force_tol": -math.inf}}, r"paths\.force_tol=-inf"),
    ({"data": {"n_train": 0}}, r"data\.n_train=0"),
    ({"data": {"data_root": ""}}, r"data\.data_root=''"),
    ({"data": {"download": "yes"}}, r"data\.download='yes'"),
    ({"version": FORMAT_VERSION + 1}, rf"config\.version={FORMAT_VERSION + 1} \(a newer format"),
    ({"version": FORMAT_VERSION + 1, "new_section": {}}, r"config\.version=.*newer"),
    ({"version": "1"}, r"config\.version='1'"),
    ({"model": [8, 1]}, r"config\.model must be a JSON object, got list"),
    ({"seed": -1}, r"seed=-1"),
    ({"device": "tpu"}, r"device='tpu'"),
    ({"paths": {"pairs": "some"}}, r"paths\.pairs='some'"),
    ({"train": {"regime": "cyclic"}}, r"train\.regime='cyclic'"),
    ({"paths": {"n_points": 2}}, r"paths\.n_points=2"),
    ({"paths": {"n_points": 12, "max_points": 8}}, r"paths\.max_points=8"),
    ({"train": {"batch_size": 0}}, r"train\.batch_size=0"),
    ({1: 2, "a": 3}, r"unknown key config\.1"),
    ({"paths": {"precision": "float16"}}, r"paths\.precision='float16'"),
    ({"paths": {"compile": 1}}, r"paths\.compile=1"),
    ({"memory_mb": 0}, r"memory_mb=0"),
    ({"memory_mb": 1.5}, r"memory_mb=1\.5"),
    ({"model": {"activation": "sigmoid"}}, r"model\.activation='sigmoid'.*'relu', 'tanh'"),
    ({"model": {"activation": None}}, r"model\.activation=None"),
    (
        {"model": {"arch": "transformer", "activation": "tanh"}},
        r"model\.activation='tanh': model\.arch='transformer' has its own nonlinearity",
    ),
    (
        {"model": {"arch": "resnet9", "activation": "tanh"}},
        r"model\.activation='tanh': model\.arch='resnet9'",
    ),
    (
        {"data": {"name": "pydoc"}, "model": {"arch": "charlm", "activation": "tanh"}},
        r"model\.activation='tanh': model\.arch='charlm'",
    ),
    (
        {"model": {"factory": "torchvision:resnet18", "activation": "tanh"}},
        r"model\.activation='tanh': model\.factory='torchvision:resnet18'",
    ),
]


@pytest.mark.parametrize(("d", "match"), BAD_DICTS, ids=[m for _, m in BAD_DICTS])
def test_bad_dict_names_the_field(d, match):
    with pytest.raises(ValueError, match=match):
        RunConfig.from_dict(d)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{", r"config is not valid JSON"),
        ("[1, 2]", r"config must be a JSON object, got list"),
        ('{"train": {"lr": NaN}}', r"train\.lr=nan"),
        ('{"model": {"width": 1e999}}', r"model\.width=inf"),
    ],
)
def test_bad_json(text, match):
    with pytest.raises(ValueError, match=match):
        RunConfig.from_json(text)


def test_constructor_and_replace_validate_too():
    with pytest.raises(ValueError, match=r"model\.width=0"):
        RunConfig(model=ModelConfig(width=0))
    with pytest.raises(ValueError, match=r"data='digits': must be a DataConfig"):
        RunConfig(data="digits")
    with pytest.raises(ValueError, match=r"data\.n_train=-5"):
        RunConfig(data=DataConfig(n_train=-5))
    with pytest.raises(ValueError, match=r"model\.depth=-1"):
        RunConfig().replace(model={"depth": -1})
    with pytest.raises(ValueError, match=r"unknown key config\.model\.widht"):
        RunConfig().replace(model={"widht": 3})
    with pytest.raises(ValueError, match=r"unknown key config\.optimizer"):
        RunConfig().replace(optimizer="sgd")


# --- property test ------------------------------------------------------------------------

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
POS_FLOAT = st.floats(min_value=1e-12, max_value=1e6)

VALID = {
    "data": {
        "name": st.sampled_from(DATASETS),
        "n_train": st.one_of(st.none(), st.integers(1, 10**6)),
        "n_test": st.one_of(st.none(), st.integers(1, 10**6)),
        "data_root": st.text(min_size=1, max_size=8),
        "download": st.booleans(),
    },
    "model": {
        "arch": st.sampled_from(ARCHITECTURES),
        "width": st.integers(1, 4096),
        "depth": st.integers(1, 64),
        "activation": st.sampled_from(ACTIVATIONS),
    },
    "train": {
        "minima": st.integers(2, 256),
        "regime": st.sampled_from(REGIMES),
        "lr": POS_FLOAT,
        "lr_final": POS_FLOAT,
        "steps": st.integers(1, 10**7),
        "batch_size": st.one_of(st.none(), st.integers(1, 10**5)),
        "l2": st.one_of(st.just(0.0), st.just(0), POS_FLOAT),
        "grad_tol": st.one_of(POS_FLOAT, st.integers(1, 10)),
    },
    "paths": {
        "pairs": st.sampled_from(PAIRS),
        "n_points": st.integers(3, 64),
        "max_points": st.integers(64, 4096),  # >= any n_points drawn
        "steps": st.integers(1, 10**7),
        "force_tol": POS_FLOAT,
        "grad_tol": POS_FLOAT,
        "batch_size": st.one_of(st.none(), st.integers(1, 10**5)),
        "noisy_steps": st.integers(0, 10**7),
        "saddle_tol": POS_FLOAT,
        "precision": st.sampled_from(PRECISIONS),
        "compile": st.booleans(),
    },
    "seed": st.integers(0, 2**63 - 1),
    "device": st.sampled_from(DEVICES),
    "memory_mb": st.one_of(st.none(), st.integers(1, 10**6)),
    "version": st.integers(-1, FORMAT_VERSION + 1),
}


def _field(valid, junk: bool):
    """A valid value, or (when ``junk``) sometimes junk; absent fields take the default."""
    return st.one_of(valid, valid, valid, JUNK) if junk else valid


def _dicts(junk: bool):
    def section(fields):
        return st.fixed_dictionaries({}, optional={k: _field(v, junk) for k, v in fields.items()})

    optional = {k: section(v) if isinstance(v, dict) else _field(v, junk) for k, v in VALID.items()}
    if junk:
        optional = {k: v | JUNK for k, v in optional.items()} | {"extra": JUNK}
    return st.fixed_dictionaries({}, optional=optional)


VALID_DICTS = _dicts(junk=False)  # every value valid (but the version): mostly accepted
MIXED_DICTS = _dicts(junk=True)  # valid and junk mixed field by field: mostly rejected


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d=st.one_of(VALID_DICTS, MIXED_DICTS, JUNK))
def test_from_dict_round_trips_or_raises_value_error(d):
    try:
        c = RunConfig.from_dict(d)
    except ValueError as exc:
        assert str(exc)  # a message, never an empty error
        return
    text = c.to_json()
    again = RunConfig.from_json(text)
    assert again == c
    assert again.to_json() == text
    assert again.run_id == c.run_id == RunConfig.from_dict(json.loads(text)).run_id


def test_the_engine_options_are_the_config_sections_with_one_set_of_defaults():
    """``config.train`` is the engine's MinimaOptions and ``config.paths`` its PathOptions,
    each with the network's own fields added: every engine knob is a config field (in the run
    id), with the same default, and the dense checks' interval and density change the id."""
    cfg = RunConfig()
    for engine, section in ((MinimaOptions(), cfg.train), (PathOptions(), cfg.paths)):
        assert isinstance(section, type(engine))
        for f in dataclasses.fields(engine):
            assert getattr(section, f.name) == getattr(engine, f.name), f.name
    changed = cfg.replace(paths={"check_every": 7, "check_density": 3})
    assert (changed.paths.check_every, changed.paths.check_density) == (7, 3)
    assert changed.run_id != cfg.run_id
