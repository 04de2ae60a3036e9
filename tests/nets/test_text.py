"""Text: corpora as next-character examples, the character transformer batched == loop, and
the barcode of a tiny language model end to end."""

import pytest
import torch

from core import landscape_of_model
from core.engine.evaluate import autograd_values_and_grads
from core.nets.models import flatten
from core.nets.module import ModuleObjective
from core.nets.text import CharTransformer, load_text, sequence_cross_entropy

pytestmark = pytest.mark.usefixtures("one_thread")

TEXT = "the quick brown fox jumps over the lazy dog. " * 12


def test_plain_text_files_become_shifted_windows(tmp_path):
    (tmp_path / "a.txt").write_text(TEXT[:300])
    (tmp_path / "b.txt").write_text(TEXT[300:])
    t = load_text(tmp_path, context=8, n_train=20, n_test=5, seed=3)
    assert t.vocab == "".join(sorted(set(TEXT)))
    assert t.x_train.shape == t.y_train.shape == (20, 8) and t.x_test.shape == (5, 8)
    assert torch.equal(t.x_train[:, 1:], t.y_train[:, :-1])  # targets are the next characters
    decoded = "".join(t.vocab[i] for i in t.x_train[0].tolist()) + t.vocab[t.y_train[0, -1]]
    assert decoded in TEXT
    again = load_text(tmp_path, context=8, n_train=20, n_test=5, seed=3)
    assert torch.equal(again.x_train, t.x_train)  # seeded


def test_the_python_docs_corpus_ships_with_python():
    t = load_text("pydoc", context=32, n_train=100, n_test=10)
    assert t.name == "pydoc" and len(t.vocab) > 60 and t.x_train.shape == (100, 32)


@pytest.mark.parametrize(
    ("source", "kw", "match"),
    [
        ("nowhere.txt", {}, "not 'pydoc', a text file"),
        ("short", {"context": 64}, "fewer than two windows"),
        ("ok", {"context": 8, "n_train": 10_000}, "the corpus has"),
    ],
)
def test_bad_text_input(tmp_path, source, kw, match):
    (tmp_path / "short").write_text("too short")
    (tmp_path / "ok").write_text(TEXT)
    with pytest.raises(ValueError, match=match):
        load_text(tmp_path / source, **kw)


def test_character_transformer_batched_equals_loop(tmp_path):
    (tmp_path / "t.txt").write_text(TEXT)
    t = load_text(tmp_path / "t.txt", context=8, n_train=24, n_test=4)
    torch.manual_seed(0)
    model = CharTransformer(len(t.vocab), width=8, depth=2, context=8)
    obj = ModuleObjective(model, t.x_train, t.y_train, loss=sequence_cross_entropy)
    assert obj.strategy == "vmap"
    th = flatten(model) + 0.05 * torch.randn(
        3, obj.n_params, generator=torch.Generator().manual_seed(1)
    )
    vb, gb = autograd_values_and_grads(lambda x: obj.evaluate_with(x, "vmap"), th)
    vl, gl = autograd_values_and_grads(lambda x: obj.evaluate_with(x, "loop"), th)
    torch.testing.assert_close(vb, vl, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gb, gl, rtol=1e-4, atol=1e-5 * float(gl.abs().max()))


def test_the_barcode_of_a_tiny_language_model(tmp_path):
    (tmp_path / "t.txt").write_text(TEXT)
    t = load_text(tmp_path / "t.txt", context=8, n_train=24, n_test=4)
    land = landscape_of_model(
        CharTransformer(len(t.vocab), width=8, depth=1, context=8),
        (t.x_train, t.y_train),
        loss=sequence_cross_entropy,
        minima=3,
        device="cpu",
        train={"steps": 200, "lr": 0.02},
        paths={"steps": 40, "n_points": 5, "max_points": 6},
    )
    assert len(land.barcode) == len(land.minima) >= 1
    assert (land.minima.values < 2.0).all()  # below the uniform guess's log(vocabulary) = 3.0


def test_the_built_in_text_run_end_to_end(tmp_path):
    """data.name='pydoc' with model.arch='charlm' runs through the pipeline like the image
    networks: a width/depth like theirs, batched == loop, a stored barcode."""
    from core.nets.data import load_dataset
    from core.nets.models import build_model
    from core.nets.objective import NetworkObjective
    from core.runs.config import RunConfig
    from core.runs.pipeline import run
    from core.runs.store import RunStore

    data = load_dataset("pydoc", n_train=24, n_test=8, context=8)
    assert data.input_shape == (8,) and data.x_train.dtype == torch.int64
    model = build_model("charlm", 8, 1, data.input_shape, data.n_classes)
    th = NetworkObjective(model, data).init(2, seed=0)
    looped = NetworkObjective(model, data, strategy="loop")(th)
    torch.testing.assert_close(NetworkObjective(model, data, strategy="vmap")(th), looped)
    cfg = RunConfig().replace(
        data={"name": "pydoc", "n_train": 24, "n_test": 8, "context": 8},
        model={"arch": "charlm", "width": 8, "depth": 1},
        train={"minima": 3, "steps": 100, "lr": 0.02},
        paths={"steps": 30, "n_points": 4, "max_points": 5},
        device="cpu",
    )
    result = run(cfg, store=RunStore(tmp_path))
    assert len(result.barcode) == len(result.minima) == result.summary.n_minima
    assert (result.metrics.train_error <= 1).all() and (result.metrics.test_loss > 0).all()


def test_text_and_image_architectures_do_not_mix():
    from core.runs.config import RunConfig

    with pytest.raises(ValueError, match="model.arch='mlp': data.name='pydoc' needs a text"):
        RunConfig().replace(data={"name": "pydoc"})
    with pytest.raises(ValueError, match="model.arch='charlm': data.name='digits' needs an image"):
        RunConfig().replace(model={"arch": "charlm"})
