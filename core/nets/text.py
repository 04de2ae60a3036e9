"""Text: a character-level causal transformer and the corpora it reads.

``load_text(source, context=...)`` turns a corpus into next-character examples: inputs
(N, L) of character ids and targets (N, L), the same sequences shifted by one. Sources:

- ``"pydoc"``: the Python documentation's topic pages that CPython ships in its standard
  library (``pydoc_data.topics``, PSF licence; about 465,000 characters), so a text landscape
  needs no download at all;
- a plain-text file (UTF-8), or a folder of ``*.txt`` files, read in name order.

The text is cut into non-overlapping windows of ``context + 1`` characters; a seeded shuffle
splits them into train and test (``n_train``, ``n_test``; the rest of the windows are
dropped). Character ids follow the sorted characters of the whole corpus.

``CharTransformer(vocab, width, depth, context)`` predicts every next character at once
(causal attention); ``sequence_cross_entropy`` is its loss. Together with
``core.landscape_of_model`` they give the barcode of a language model::

    text = load_text("pydoc", context=32, n_train=512)
    model = CharTransformer(len(text.vocab), width=16, depth=1, context=32)
    land = landscape_of_model(model, (text.x_train, text.y_train), loss=sequence_cross_entropy)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class TextData:
    """Next-character examples: ``x_*`` (N, L) int64 ids, ``y_*`` (N, L) the next ones."""

    name: str
    vocab: str  # character of each id
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor


def _read(source: str | Path) -> tuple[str, str]:
    if source == "pydoc":
        from pydoc_data.topics import topics  # the standard library's copy of the docs

        return "pydoc", "".join(topics[k] for k in sorted(topics))
    path = Path(source)
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise ValueError(
            f"text source {str(source)!r}: not 'pydoc', a text file or a folder of .txt"
        )
    try:
        return path.name, "".join(f.read_text(encoding="utf-8") for f in files)
    except UnicodeDecodeError as exc:
        raise ValueError(f"text source {str(source)!r} is not UTF-8 text ({exc.reason})") from None


def load_text(
    source: str | Path = "pydoc",
    *,
    context: int = 32,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
) -> TextData:
    """The corpus ``source`` as next-character examples of ``context`` characters."""
    if isinstance(context, bool) or not isinstance(context, int) or context < 1:
        raise ValueError(f"context={context!r}: must be a positive integer")
    name, text = _read(source)
    vocab = "".join(sorted(set(text)))
    lookup = {c: i for i, c in enumerate(vocab)}
    ids = np.fromiter((lookup[c] for c in text), dtype=np.int64, count=len(text))
    n = (len(ids) - 1) // (context + 1)
    if n < 2:
        raise ValueError(
            f"text source {str(source)!r} holds {len(ids)} characters: "
            f"fewer than two windows of {context + 1}"
        )
    windows = torch.from_numpy(ids[: n * (context + 1)].reshape(n, context + 1))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = n_test if n_test is not None else max(1, n // 10)
    n_train = n_train if n_train is not None else n - n_test
    if n_train < 1 or n_test < 1 or n_train + n_test > n:
        raise ValueError(f"n_train={n_train}, n_test={n_test}: the corpus has {n} windows")
    tr, te = windows[order[:n_train]], windows[order[n_train : n_train + n_test]]
    return TextData(name, vocab, tr[:, :-1], tr[:, 1:], te[:, :-1], te[:, 1:])


class CharTransformer(nn.Module):
    """A causal transformer over characters: (B, L) ids -> (B, L, V) next-character logits."""

    def __init__(
        self, vocab: int, width: int = 16, depth: int = 1, context: int = 32, heads: int = 2
    ):
        super().__init__()
        if width % heads:
            raise ValueError(f"width={width}: must be a multiple of heads={heads}")
        self.heads = heads
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Parameter(torch.zeros(context, width))
        self.blocks = nn.ModuleList(_Block(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.position, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        h = self.embed(x) + self.position[: x.shape[1]]  # (B, L, W)
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h))


class _Block(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.out = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def forward(self, h: Tensor) -> Tensor:
        b, length, w = h.shape
        q, k, v = self.qkv(self.norm1(h)).view(b, length, 3, self.heads, w // self.heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, heads, L, W / heads)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, heads, L, L)
        future = torch.ones(length, length, dtype=torch.bool, device=h.device).triu(1)
        a = scores.masked_fill(future, -math.inf).softmax(-1) @ v  # written out: vmap batches it
        h = h + self.out(a.transpose(1, 2).reshape(b, length, w))
        return h + self.mlp(self.norm2(h))


def sequence_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean next-character cross-entropy of (B, L, V) logits against (B, L) ids."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())
