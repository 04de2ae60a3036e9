"""Any nn.Module as an objective: batched == loop for both BatchNorm modes, statistics that
match PyTorch's own, checkpoints as minima, torchvision's ResNet-18, and bad input."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import write_cifar10
from safetensors.torch import save_file
from torch import nn

from core import landscape_of_model
from core.engine.evaluate import autograd_values_and_grads
from core.nets.data import load_dataset
from core.nets.models import flatten
from core.nets.module import ModuleObjective, load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


class Residual(nn.Module):
    """What a user writes: a convolution, BatchNorm, a residual block, a linear head."""

    def __init__(self, width: int = 4):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width))
        self.block = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width))
        self.drop = nn.Dropout(0.5)  # must be off: the landscape is deterministic
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        h = F.relu(self.stem(x))
        h = F.relu(h + self.block(h))
        return self.head(self.drop(h.mean((2, 3))))


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", n_train=96, n_test=32)


def _thetas(model, m=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = flatten(model)
    return base + 0.1 * torch.randn(m, base.numel(), generator=g)


@pytest.mark.parametrize("batchnorm", ["batch", "recomputed"])
def test_batched_equals_loop_in_values_and_gradients(digits, batchnorm):
    torch.manual_seed(0)
    model = Residual()
    obj = ModuleObjective(
        model, digits.x_train, digits.y_train, batchnorm=batchnorm, batch_size=32, stats_examples=64
    )
    assert obj.strategy == "vmap"
    th = _thetas(model)
    vb, gb = autograd_values_and_grads(lambda t: obj.evaluate_with(t, "vmap"), th)
    vl, gl = autograd_values_and_grads(lambda t: obj.evaluate_with(t, "loop"), th)
    torch.testing.assert_close(vb, vl, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gb, gl, rtol=1e-4, atol=1e-5 * float(gl.abs().max()))
    assert obj(th).shape == (3,) and torch.isfinite(gb).all()


def test_recomputed_statistics_are_pytorchs_own(digits):
    """The "recomputed" value at theta equals loading theta into the model, letting PyTorch
    recompute every running statistic from the statistics examples (momentum None, one
    batch), and evaluating in eval mode."""
    torch.manual_seed(1)
    model = Residual()
    obj = ModuleObjective(
        model, digits.x_train, digits.y_train, batchnorm="recomputed", stats_examples=64, l2=0.0
    )
    theta = _thetas(model, m=1)[0]
    ref = copy.deepcopy(model)
    torch.nn.utils.vector_to_parameters(theta, ref.parameters())
    for bn in (m for m in ref.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.reset_running_stats()
        bn.momentum = None
    with torch.no_grad():
        ref.train()
        ref.drop.eval()
        ref(digits.x_train[:64])
        ref.eval()
        want = F.cross_entropy(ref(digits.x_train), digits.y_train)
    assert obj(theta[None])[0].item() == pytest.approx(want.item(), rel=1e-5)


def test_batch_mode_normalises_each_evaluation_batch_by_itself(digits):
    """The loss depends on the evaluation batches: 32 at a time differs from all at once."""
    torch.manual_seed(2)
    model = Residual()
    th = _thetas(model, m=2)
    small = ModuleObjective(model, digits.x_train, digits.y_train, batch_size=32)
    whole = ModuleObjective(model, digits.x_train, digits.y_train)
    assert not torch.allclose(small(th), whole(th))


def test_checkpoints_round_trip_and_become_the_minima(digits, tmp_path):
    torch.manual_seed(3)
    model = Residual()
    nets = [Residual() for _ in range(2)]
    torch.save(nets[0].state_dict(), tmp_path / "a.pt")
    save_file(
        {k: v.contiguous() for k, v in nets[1].state_dict().items()}, tmp_path / "b.safetensors"
    )
    for net, name in zip(nets, ["a.pt", "b.safetensors"], strict=True):
        assert torch.equal(load_checkpoint(tmp_path / name, model), flatten(net))
    land = landscape_of_model(
        model,
        (digits.x_train, digits.y_train),
        checkpoints=tmp_path,
        device="cpu",
        train={"steps": 200, "lr": 0.05, "grad_tol": 1e-3},
        paths={"steps": 40, "n_points": 5, "max_points": 6},
    )
    assert sorted(land.minima.start_of.tolist()) == list(range(len(land.minima)))
    assert len(land.barcode) == len(land.minima) == 2 and land.barcode.n_essential == 1
    assert np.isfinite(land.paths.saddles).all()


def test_trained_from_the_models_own_initialisation(digits):
    torch.manual_seed(4)
    land = landscape_of_model(
        Residual(),
        torch.utils.data.TensorDataset(digits.x_train, digits.y_train),
        minima=3,
        batch_size=48,
        device="cpu",
        train={"steps": 150, "lr": 0.05},
        paths={"steps": 40, "n_points": 5, "max_points": 6},
    )
    assert len(land.barcode) == len(land.minima) >= 1
    births = np.sort(land.barcode.births)
    np.testing.assert_allclose(births, np.sort(land.minima.values))


def test_torchvision_resnet18_batched_equals_loop(tmp_path, monkeypatch):
    """torchvision's resnet18 on a few CIFAR-10 images read from files in torchvision's format."""
    torchvision = pytest.importorskip("torchvision")
    write_cifar10(tmp_path, monkeypatch, n_train=5, n_test=2)
    data = load_dataset("cifar10", data_root=tmp_path)
    torch.manual_seed(5)
    model = torchvision.models.resnet18(num_classes=10)
    obj = ModuleObjective(model, data.x_train, data.y_train)
    th = _thetas(model, m=2)
    torch.testing.assert_close(
        obj.evaluate_with(th, "vmap"), obj.evaluate_with(th, "loop"), rtol=1e-5, atol=1e-5
    )


class NotAStateDict:
    pass


@pytest.mark.parametrize(
    ("write", "match"),
    [
        (lambda p, m: None, "is missing"),
        (lambda p, m: torch.save(NotAStateDict(), p), "without unpickling code"),
        (lambda p, m: p.write_bytes(b"garbage"), "cannot be read"),
        (
            lambda p, m: torch.save(
                {k: v for k, v in m.state_dict().items() if "head" not in k}, p
            ),
            "lacks 2 parameter",
        ),
        (
            lambda p, m: torch.save(m.state_dict() | {"extra.weight": torch.zeros(1)}, p),
            "'extra.weight'",
        ),
        (
            lambda p, m: torch.save(m.state_dict() | {"head.bias": torch.zeros(3)}, p),
            r"head.bias has shape \(3,\), the model's is \(10,\)",
        ),
    ],
)
def test_a_bad_checkpoint_gets_one_clear_message(tmp_path, write, match):
    model = Residual()
    path = tmp_path / "c.pt"
    write(path, model)
    with pytest.raises(ValueError, match=match):
        load_checkpoint(path, model)


def test_bad_arguments_name_the_value(digits):
    with pytest.raises(ValueError, match="batchnorm='train'"):
        ModuleObjective(Residual(), digits.x_train, digits.y_train, batchnorm="train")
    with pytest.raises(ValueError, match="minima=1"):
        landscape_of_model(Residual(), (digits.x_train, digits.y_train), minima=1, device="cpu")
    with pytest.raises(ValueError, match="data must be"):
        landscape_of_model(Residual(), digits.x_train, device="cpu")


FACTORY = """
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.head = nn.Linear(3, 10)

    def forward(self, x):
        return self.head(F.relu(self.bn(self.conv(x))).mean((2, 3)))


def make():
    return Net()
"""
ENGINE_FLAGS = "--steps 100 --lr 0.05 --path-steps 30 --path-points 5 --path-max-points 6"


@pytest.fixture
def user_package(tmp_path, monkeypatch):
    (tmp_path / "usernets.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _analyze(args: str, capsys) -> tuple[int, str, str]:
    from core.__main__ import main

    code = main(
        ["analyze", "--dataset", "digits", "--n-train", "64", "--device", "cpu", *args.split()]
    )
    out, err = capsys.readouterr()
    return code, out, err


def test_analyze_a_user_factory_from_checkpoints(user_package, capsys):
    import usernets

    ckpt = user_package / "ckpt"
    ckpt.mkdir()
    for i in range(2):
        torch.manual_seed(i)
        torch.save(usernets.make().state_dict(), ckpt / f"net{i}.pt")
    code, out, err = _analyze(f"--model usernets:make --checkpoints {ckpt} {ENGINE_FLAGS}", capsys)
    assert code == 0, err
    assert "usernets:make on digits (64 examples, BatchNorm: batch): 2 minima" in out
    assert "TO-score (sum):" in out


def test_analyze_trains_minima_with_recomputed_statistics(user_package, capsys):
    flags = f"--model usernets:make --minima 3 --batchnorm recomputed {ENGINE_FLAGS}"
    code, out, err = _analyze(flags, capsys)
    assert code == 0, err
    assert "BatchNorm: recomputed" in out and "TO-score (max):" in out


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ("--model nowhere.at.all:make", "cannot import 'nowhere.at.all'"),
        ("--model usernets:missing", "usernets has no 'missing'"),
        ("--model usernets", "must be torchvision:NAME or package.module:FACTORY"),
        ("--model torchvision:resnet1000", "torchvision.models has no model 'resnet1000'"),
        ("--model torchvision:resnet18", "ResNet cannot evaluate the data"),
        ("--model usernets:make --checkpoints {bad}", "lacks 5 parameter(s), first 'conv.bias'"),
    ],
)
def test_analyze_bad_input_is_one_line_and_exit_2(user_package, capsys, args, match):
    bad = user_package / "bad"
    bad.mkdir()
    torch.save({"conv.weight": torch.zeros(3, 1, 3, 3)}, bad / "x.pt")
    code, out, err = _analyze(args.format(bad=bad), capsys)
    assert code == 2 and err.count("\n") == 1 and match in err, err
    assert not (user_package / "runs").exists()


def test_your_model_is_a_run_like_the_built_in_ones(user_package, capsys):
    """model.factory and train.checkpoints are config fields: `run --model ... --checkpoints`
    stores the run in the run store, where `show` (and the dashboard) read it."""
    import usernets

    from core.__main__ import main
    from core.runs.store import RunStore, read_run

    ckpt = user_package / "ckpt"
    ckpt.mkdir()
    for i in range(3):
        torch.manual_seed(10 + i)
        torch.save(usernets.make().state_dict(), ckpt / f"net{i}.pt")
    runs = user_package / "runs"
    args = f"--runs-dir {runs} run --model usernets:make --checkpoints {ckpt} --dataset digits "
    args += f"--n-train 64 --n-test 32 --device cpu {ENGINE_FLAGS}"
    assert main(args.split()) == 0, capsys.readouterr().err
    (info,), _ = RunStore(runs).list()
    assert info.config.model.factory == "usernets:make" and info.summary.n_minima <= 3
    run = read_run(RunStore(runs), info.run_id)
    starts = sorted(run.minima.start_of.tolist())
    assert len(starts) == 3 and set(starts) == set(range(len(run.minima)))
    assert main(["--runs-dir", str(runs), "show", info.run_id]) == 0
    assert "TO-score (sum" in capsys.readouterr().out


def test_a_bad_factory_in_a_run_is_one_line_and_nothing_is_written(user_package, capsys):
    from core.__main__ import main

    runs = user_package / "runs"
    code = main(f"--runs-dir {runs} run --model usernets:nothing --dataset digits".split())
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "usernets has no 'nothing'" in err
    assert not runs.exists() or not any(runs.iterdir())
