"""Files to download: figures (PNG, SVG, PDF, HTML), tables (CSV), whole runs (zip).

Static images come from kaleido (v1), which drives a headless Chromium. One export server is
started lazily, once per process, and reused: starting the browser costs seconds, later
exports a fraction of a second. MathJax is off (it would be fetched from a CDN; figures use
plain-text labels). The browser is the machine's Chromium (``BROWSER_PATH`` if set, else
``/usr/bin/chromium`` when it exists, else whatever kaleido finds); kaleido runs it with
``--headless --no-sandbox --disable-gpu`` and its own set of quiet flags.

HTML exports are self-contained: plotly.js is embedded, so they open offline.
"""

from __future__ import annotations

import asyncio
import atexit
import csv
import io
import logging
import os
import shutil
import threading
import zipfile
from typing import Any

import plotly.graph_objects as go

from core.views.plots.frame import SELECTION

log = logging.getLogger(__name__)

__all__ = [
    "FORMATS",
    "MIME",
    "browser_path",
    "figure_bytes",
    "run_archive",
    "table_csv",
    "without_selection",
]

FORMATS = ("png", "svg", "pdf", "html")
MIME = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "pdf": "application/pdf",
    "html": "text/html",
    "csv": "text/csv",
    "zip": "application/zip",
}
TIMEOUT_S = 120.0  # longest wait for the browser to start or for one figure
_LOCK = threading.Lock()
_exporter: _Exporter | None = None


def browser_path() -> str | None:
    """The Chromium that exports use: ``BROWSER_PATH``, else ``chromium`` on the PATH."""
    return os.environ.get("BROWSER_PATH") or shutil.which("chromium")


class _Exporter:
    """One Kaleido (one headless Chromium) on a private event loop in a daemon thread.

    kaleido's own sync server waits forever when the browser cannot start (its thread dies
    and the caller blocks on a queue); here every call has a timeout and errors propagate.
    """

    def __init__(self) -> None:
        import kaleido  # lazy on purpose: never imported by ``import core``

        path = browser_path()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="kaleido", daemon=True)
        self.thread.start()

        async def start():
            # MathJax would come from a CDN; without a path choreographer searches itself
            k = kaleido.Kaleido(n=1, mathjax=False, **({"path": path} if path else {}))
            await k.open()
            return k

        log.info("starting the kaleido export server (browser %s)", path or "auto")
        try:
            self.kaleido = self.call(start())
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            raise

    def call(self, coro):
        """Run a coroutine on the exporter's loop and wait for it (at most TIMEOUT_S)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT_S)

    def close(self) -> None:
        try:
            self.call(self.kaleido.close())
        except Exception as exc:  # closing a broken browser: nothing left to save
            log.debug("closing kaleido: %s", exc)
        self.loop.call_soon_threadsafe(self.loop.stop)


def _render(fig: go.Figure, opts: dict[str, Any]) -> bytes:
    """Static image bytes; after a failure the next call starts a fresh browser."""
    global _exporter
    with _LOCK:  # one figure at a time through the one browser tab
        if _exporter is None:
            _exporter = _Exporter()
            atexit.register(_exporter.close)
        exporter = _exporter
        try:
            return exporter.call(exporter.kaleido.calc_fig(fig, opts=opts))
        except BaseException:
            _exporter = None
            exporter.close()
            raise


def without_selection(fig: go.Figure) -> go.Figure:
    """A copy of ``fig`` without the traces that only draw the dashboard's selection (their
    ``meta`` is ``SELECTION``: the outline of the selected bar, its ring, its thick lines)."""
    out = go.Figure(fig)
    out.data = [t for t in out.data if t.meta != SELECTION]
    return out


def figure_bytes(
    fig: go.Figure,
    fmt: str,
    *,
    width: int = 1000,
    height: int = 600,
    scale: float = 2.0,
    selection: bool = False,
) -> bytes:
    """A figure as file content, without the dashboard's selection unless ``selection``.

    Parameters
    ----------
    fig : go.Figure
    fmt : {"png", "svg", "pdf", "html"}
        "html" is self-contained (plotly.js embedded) and needs no browser.
    selection : bool
        Keep the traces that draw the selected minimum (``without_selection``).
    width, height : int
        Size in CSS pixels of the static image.
    scale : float
        Pixel density of PNG output (2 = sharp on high-resolution screens and in print).

    Returns
    -------
    bytes

    Raises
    ------
    ValueError
        For another ``fmt``.
    ChromeNotFoundError, TimeoutError
        When Chromium is missing, or does not start or render within ``TIMEOUT_S``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if not selection:
        fig = without_selection(fig)
    if fmt == "html":
        return fig.to_html(include_plotlyjs=True, full_html=True).encode("utf-8")
    return _render(fig, {"format": fmt, "width": width, "height": height, "scale": scale})


def table_csv(rows: list[dict[str, Any]]) -> bytes:
    """Rows of a table as UTF-8 CSV; columns in first-seen key order, missing cells and
    ``None`` empty; no rows give empty bytes.

    Floats are written with ``repr`` precision (``inf``/``nan`` as ``inf``/``nan``), so
    reading the file back gives the same numbers.
    """
    if not rows:
        return b""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue().encode("utf-8")


def run_archive(store, run_id: str) -> bytes:
    """A zip of a run's folder (config, results, tensors). Dotfiles (unfinished ``.tmp-*``
    files, the lock) and symbolic links are left out: a shared run folder must not smuggle
    a link to a private file into the download. Paths inside start with the run id."""
    d = store.dir(run_id)
    if not (d / "config.json").exists():
        raise ValueError(f"no run {run_id!r} in {store.root}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(d.iterdir()):
            if f.is_file() and not f.is_symlink() and not f.name.startswith("."):
                zf.write(f, arcname=f"{run_id}/{f.relative_to(d).as_posix()}")
    return buf.getvalue()
