"""Tests for core.nets.data: offline datasets, and torchvision's loaders on tiny files written here.

The torchvision tests write a few images in each dataset's own on-disk format under tmp_path
and load them through ``load_dataset`` (the real torchvision reader); for CIFAR and SVHN the
class's md5 table is patched to the md5 of the files written, since torchvision checks it.
"""

import hashlib
import pickle
import random
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
import torchvision.datasets as tvd

from core.nets.data import DATASETS, Dataset, _mnist1d_arrays, load_dataset

TORCHVISION_NAMES = ("mnist", "fashion_mnist", "cifar10", "cifar100", "svhn")


# ---------------------------------------------------------------- writers of torchvision files


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _images(seed: int, n: int, shape: tuple[int, ...]) -> np.ndarray:
    """(n, *shape) uint8 pixels that use the whole range 0..255."""
    x = np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)
    x.reshape(n, -1)[0, :2] = (0, 255)
    return x


def _write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """MNIST's idx-ubyte files: big-endian magic (2051 images, 2049 labels), sizes, uint8."""
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
        struct.pack(">4i", 2051, n, h, w) + images.tobytes()
    )
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">2i", 2049, n) + labels.astype(np.uint8).tobytes()
    )


def _write_pickle(path: Path, obj: dict) -> str:
    path.write_bytes(pickle.dumps(obj))
    return _md5(path)


def _cifar_batch(images: np.ndarray, labels: np.ndarray, label_key: str) -> dict:
    """A CIFAR batch dict: data (n, 3072) uint8 rows = R plane, G plane, B plane (32x32 each)."""
    return {"data": images.reshape(len(images), -1), label_key: [int(v) for v in labels]}


# ---------------------------------------------------------------- digits


def test_digits_shapes_range_labels():
    data = load_dataset("digits")
    assert isinstance(data, Dataset)
    assert data.x_train.shape == (1437, 1, 8, 8) and data.x_test.shape == (360, 1, 8, 8)
    assert data.y_train.shape == (1437,) and data.y_test.shape == (360,)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert data.input_shape == (1, 8, 8) and data.n_classes == 10
    x = torch.cat([data.x_train, data.x_test])
    assert x.min().item() == 0.0 and x.max().item() == 1.0
    # pixels are k / 16 for integer k
    assert torch.equal(x * 16, (x * 16).round())
    # stratified: every class in both splits, test counts within one of 20% of the class
    y = torch.cat([data.y_train, data.y_test])
    assert torch.equal(torch.unique(data.y_test), torch.arange(10))
    counts_all, counts_test = torch.bincount(y, minlength=10), torch.bincount(data.y_test)
    assert torch.all((counts_test - 0.2 * counts_all).abs() <= 1)
    assert counts_all.sum().item() == 1797


def test_digits_deterministic_and_seeded():
    a, b = load_dataset("digits", seed=0), load_dataset("digits", seed=0)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    c = load_dataset("digits", seed=1)
    assert not torch.equal(a.x_train, c.x_train)
    # same examples overall, differently split
    flat = lambda d: torch.cat([d.x_train, d.x_test]).flatten(1)  # noqa: E731
    rows = lambda t: sorted(map(tuple, t.tolist()))  # noqa: E731
    assert rows(flat(a)) == rows(flat(c))


def test_digits_subsets():
    full = load_dataset("digits", seed=3)
    sub = load_dataset("digits", n_train=100, n_test=50, seed=3)
    assert sub.x_train.shape == (100, 1, 8, 8) and sub.y_test.shape == (50,)
    again = load_dataset("digits", n_train=100, n_test=50, seed=3)
    assert torch.equal(sub.x_train, again.x_train) and torch.equal(sub.y_test, again.y_test)
    # each subset row is a row of the full split, without repeats
    full_rows = {tuple(r) for r in full.x_train.flatten(1).tolist()}
    sub_rows = [tuple(r) for r in sub.x_train.flatten(1).tolist()]
    assert set(sub_rows) <= full_rows
    assert len(set(sub_rows)) == len({tuple(r) for r in sub_rows})
    # a smaller subset is a prefix of a larger one; test subset independent of n_train
    small = load_dataset("digits", n_train=10, n_test=50, seed=3)
    assert torch.equal(small.x_train, sub.x_train[:10])
    assert torch.equal(small.x_test, sub.x_test)
    other = load_dataset("digits", n_train=100, seed=4)
    assert not torch.equal(other.x_train, load_dataset("digits", n_train=100, seed=3).x_train)


def test_dataset_to_and_repr():
    data = load_dataset("digits", n_train=5, n_test=3)
    moved = data.to("cpu")
    assert moved is not data and torch.equal(moved.x_train, data.x_train)
    text = repr(data)
    assert text == (
        "Dataset(name='digits', n_train=5, n_test=3, input_shape=(1, 8, 8), n_classes=10, "
        "device=cpu)"
    )
    with pytest.raises(ValueError, match="input_shape"):
        Dataset("bad", data.x_train, data.y_test, data.x_test, data.y_test, 10, (1, 8, 8))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_cuda():
    data = load_dataset("digits", n_train=20, n_test=10, device="cuda")
    assert data.x_train.is_cuda and data.y_test.is_cuda
    assert torch.equal(data.to("cpu").x_train, load_dataset("digits", n_train=20).x_train)


# ---------------------------------------------------------------- mnist1d


def test_mnist1d_shapes_and_subsets():
    data = load_dataset("mnist1d")
    assert data.x_train.shape == (4000, 1, 40) and data.x_test.shape == (1000, 1, 40)
    assert data.input_shape == (1, 40) and data.n_classes == 10
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert torch.equal(torch.unique(data.y_train), torch.arange(10))
    # the generator standardizes the whole set
    x = torch.cat([data.x_train, data.x_test])
    assert abs(x.mean().item()) < 1e-3 and abs(x.std().item() - 1) < 1e-2
    sub = load_dataset("mnist1d", n_train=64, n_test=32, seed=5)
    assert sub.x_train.shape == (64, 1, 40) and sub.y_test.shape == (32,)
    assert torch.equal(sub.x_train, load_dataset("mnist1d", n_train=64, seed=5).x_train)
    # mutating a returned tensor does not touch the cached arrays
    data.x_train.zero_()
    assert load_dataset("mnist1d").x_train.abs().sum() > 0


def test_mnist1d_generation_leaves_global_rngs_alone():
    # make_dataset seeds Python's and numpy's global RNGs; _mnist1d_arrays restores them
    py_before, np_before = random.getstate(), np.random.get_state()  # noqa: NPY002
    x, y, x_test, y_test = _mnist1d_arrays(50, 7)  # small and uncached: really generates
    np_after = np.random.get_state()  # noqa: NPY002
    assert random.getstate() == py_before
    assert np.array_equal(np_after[1], np_before[1]) and np_after[2:] == np_before[2:]
    assert x.shape == (40, 40) and x_test.shape == (10, 40)
    assert np.array_equal(_mnist1d_arrays.__wrapped__(50, 7)[0], x)  # deterministic


# ---------------------------------------------------------------- torchvision formats


@pytest.mark.parametrize(
    ("name", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")]
)
def test_mnist_like_from_idx_files(tmp_path, name, folder):
    raw = tmp_path / folder / "raw"
    x_tr, x_te = _images(0, 7, (28, 28)), _images(1, 4, (28, 28))
    y_tr, y_te = np.array([0, 1, 2, 3, 4, 5, 9]), np.array([9, 8, 7, 6])
    _write_idx(raw, "train", x_tr, y_tr)
    _write_idx(raw, "t10k", x_te, y_te)
    data = load_dataset(name, data_root=tmp_path)
    assert data.input_shape == (1, 28, 28) and data.n_classes == 10
    assert data.x_train.dtype == torch.float32 and data.x_train.shape == (7, 1, 28, 28)
    assert torch.equal(data.x_train, torch.from_numpy(x_tr[:, None] / 255.0).float())
    assert torch.equal(data.x_test, torch.from_numpy(x_te[:, None] / 255.0).float())
    assert data.y_train.tolist() == y_tr.tolist() and data.y_test.tolist() == y_te.tolist()
    assert data.x_train.min().item() == 0.0 and data.x_train.max().item() == 1.0
    sub = load_dataset(name, data_root=str(tmp_path), n_train=3, seed=2)
    rows = {tuple(r) for r in data.x_train.flatten(1).tolist()}
    assert sub.x_train.shape == (3, 1, 28, 28)
    assert all(tuple(r) in rows for r in sub.x_train.flatten(1).tolist())


@pytest.mark.parametrize(
    ("name", "cls", "n_classes"), [("cifar10", tvd.CIFAR10, 10), ("cifar100", tvd.CIFAR100, 100)]
)
def test_cifar_from_pickled_batches(tmp_path, monkeypatch, name, cls, n_classes):
    folder = tmp_path / cls.base_folder
    folder.mkdir()
    label_key = "labels" if name == "cifar10" else "fine_labels"
    n_train_files = len(cls.train_list)  # 5 batches for CIFAR-10, one file for CIFAR-100
    x_tr = _images(2, 2 * n_train_files, (3, 32, 32))  # (N, C, H, W)
    y_tr = np.arange(2 * n_train_files) * 7 % n_classes
    x_te, y_te = _images(3, 3, (3, 32, 32)), np.array([n_classes - 1, 0, 1])
    train_list = []
    for i, (fname, _) in enumerate(cls.train_list):
        batch = _cifar_batch(x_tr[2 * i : 2 * i + 2], y_tr[2 * i : 2 * i + 2], label_key)
        train_list.append([fname, _write_pickle(folder / fname, batch)])
    test_name = cls.test_list[0][0]
    test_md5 = _write_pickle(folder / test_name, _cifar_batch(x_te, y_te, label_key))
    names = [f"class{i}" for i in range(n_classes)]
    meta_md5 = _write_pickle(folder / cls.meta["filename"], {cls.meta["key"]: names})
    monkeypatch.setattr(cls, "train_list", train_list)
    monkeypatch.setattr(cls, "test_list", [[test_name, test_md5]])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": meta_md5})

    data = load_dataset(name, data_root=tmp_path)
    assert data.input_shape == (3, 32, 32) and data.n_classes == n_classes
    assert data.x_train.shape == (2 * n_train_files, 3, 32, 32) and data.x_train.is_contiguous()
    assert torch.equal(data.x_train, torch.from_numpy(x_tr / 255.0).float())
    assert torch.equal(data.x_test, torch.from_numpy(x_te / 255.0).float())
    assert data.y_train.tolist() == y_tr.tolist() and data.y_test.tolist() == y_te.tolist()


def test_svhn_from_mat_files(tmp_path, monkeypatch):
    x_tr, x_te = _images(4, 6, (3, 32, 32)), _images(5, 2, (3, 32, 32))  # (N, C, H, W)
    y_tr, y_te = np.array([10, 1, 2, 3, 9, 10]), np.array([5, 10])  # SVHN: 10 means digit 0
    split_list = {k: list(v) for k, v in tvd.SVHN.split_list.items()}
    for split, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        path = tmp_path / split_list[split][1]
        # SVHN layout: X (H, W, C, N) uint8, y (N, 1)
        scipy.io.savemat(path, {"X": x.transpose(2, 3, 1, 0), "y": y[:, None].astype(np.uint8)})
        split_list[split][2] = _md5(path)
    monkeypatch.setattr(tvd.SVHN, "split_list", split_list)

    data = load_dataset("svhn", data_root=tmp_path)
    assert data.input_shape == (3, 32, 32) and data.n_classes == 10
    assert torch.equal(data.x_train, torch.from_numpy(x_tr / 255.0).float())
    assert torch.equal(data.x_test, torch.from_numpy(x_te / 255.0).float())
    assert data.y_train.tolist() == [0, 1, 2, 3, 9, 0] and data.y_test.tolist() == [5, 0]


@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_missing_torchvision_data_says_how_to_get_it(tmp_path, name):
    with pytest.raises(ValueError, match="download=True") as info:
        load_dataset(name, data_root=tmp_path / "empty", download=False)
    assert name in str(info.value) and str(tmp_path / "empty") in str(info.value)


def test_failed_download_is_a_value_error(tmp_path, monkeypatch):
    def offline(self):
        raise urllib.error.URLError("offline")  # what urllib raises without a network

    monkeypatch.setattr(tvd.CIFAR10, "download", offline)
    with pytest.raises(ValueError, match="'cifar10' could not be downloaded.*offline"):
        load_dataset("cifar10", data_root=tmp_path, download=True)


def test_corrupted_cifar_is_reported_as_missing(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for fname, _ in tvd.CIFAR10.train_list + tvd.CIFAR10.test_list:
        (folder / fname).write_bytes(b"not cifar")  # md5 mismatch
    with pytest.raises(ValueError, match="cifar-10-batches-py"):
        load_dataset("cifar10", data_root=tmp_path)


# ---------------------------------------------------------------- bad arguments


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="'imagenet'.*digits, mnist1d, mnist"):
        load_dataset("imagenet")
    assert DATASETS == (
        "digits",
        "mnist1d",
        "mnist",
        "fashion_mnist",
        "cifar10",
        "cifar100",
        "svhn",
        "pydoc",
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_train": 0}, "n_train=0 .* 1437 examples"),
        ({"n_train": -3}, "n_train=-3"),
        ({"n_train": 1438}, "n_train=1438 .* 1437 examples"),
        ({"n_test": 361}, "n_test=361 .* 360 examples"),
        ({"n_test": 0}, "n_test=0"),
        ({"n_train": True}, "n_train .* True"),
        ({"n_train": 10.0}, r"n_train .* 10\.0"),
        ({"n_test": 5.5}, r"n_test .* 5\.5"),
        ({"seed": 1.5}, r"seed .* 1\.5"),
    ],
)
def test_bad_sizes_name_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_dataset("digits", **kwargs)


def test_numpy_int_sizes_accepted():
    data = load_dataset("digits", n_train=np.int64(12), n_test=np.int32(4))
    assert len(data.y_train) == 12 and len(data.y_test) == 4


def test_bad_device_names_the_value():
    with pytest.raises(ValueError, match="device='gpu0'"):
        load_dataset("digits", device="gpu0")
