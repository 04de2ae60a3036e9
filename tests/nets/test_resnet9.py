"""The paper's ResNet9 with BatchNorm: batched == loop in both BatchNorm modes, evaluation
batches that do not depend on memory, and the paper's preset, CPU-sized, end to end on tiny
CIFAR-10 files."""

import pytest
import torch
from conftest import write_cifar10

from core.engine.evaluate import autograd_values_and_grads
from core.nets.data import load_dataset
from core.nets.models import build_model
from core.nets.objective import NetworkObjective
from core.runs.pipeline import run
from core.runs.presets import get_preset
from core.runs.store import RunStore

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def cifar(tmp_path, monkeypatch):
    write_cifar10(tmp_path, monkeypatch, n_train=20, n_test=6)
    return tmp_path


def _objective(data, batchnorm, **kw):
    model = build_model("resnet9", 4, 1, data.input_shape, data.n_classes)
    return NetworkObjective(model, data, batchnorm=batchnorm, norm_batch=8, **kw)


@pytest.mark.parametrize("batchnorm", ["batch", "recomputed"])
def test_batched_equals_loop_in_both_batchnorm_modes(cifar, batchnorm):
    data = load_dataset("cifar10", data_root=cifar)
    obj = _objective(data, batchnorm)
    th = obj.init(2, seed=0)
    loop = _objective(data, batchnorm, strategy="loop")
    vmap = _objective(data, batchnorm, strategy="vmap")
    vl, gl = autograd_values_and_grads(loop, th)
    vv, gv = autograd_values_and_grads(vmap, th)
    torch.testing.assert_close(vv, vl, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gv, gl, rtol=1e-4, atol=1e-5 * float(gl.abs().max()))


def test_batch_mode_evaluation_batches_do_not_depend_on_memory(cifar):
    """BatchNorm on batch statistics: the loss is fixed by norm_batch, not by the blocks that
    the memory budget would choose."""
    data = load_dataset("cifar10", data_root=cifar)
    th = _objective(data, "batch").init(3, seed=1)
    roomy = _objective(data, "batch")(th)
    tight = _objective(data, "batch", memory_budget=1, max_points=1)(th)
    torch.testing.assert_close(roomy, tight, rtol=1e-6, atol=1e-7)
    other = NetworkObjective(
        build_model("resnet9", 4, 1, data.input_shape, 10), data, norm_batch=20
    )(th)
    assert not torch.allclose(other, roomy)  # 20 at a time is another loss than 8 at a time


def test_the_paper_preset_runs_end_to_end_cpu_sized(cifar):
    preset = get_preset("paper-resnet9-cifar10").first
    assert (preset.model.arch, preset.model.batchnorm, preset.train.minima) == (
        "resnet9",
        "batch",
        8,
    )
    cfg = preset.replace(
        data={"n_train": 20, "n_test": 6, "data_root": str(cifar)},
        model={"width": 4, "norm_batch": 8},
        train={"minima": 3, "steps": 30, "batch_size": 8},
        paths={"steps": 20, "n_points": 4, "max_points": 5, "batch_size": 8, "noisy_steps": 5},
        device="cpu",
    )
    result = run(cfg, store=RunStore(cifar / "runs"))
    assert len(result.barcode) == len(result.minima) == result.summary.n_minima
    assert result.summary.n_paths == len(result.minima) * (len(result.minima) - 1) // 2
    recomputed = cfg.replace(model={"batchnorm": "recomputed"})
    assert recomputed.run_id != cfg.run_id
