"""The layers of ``core``: each package imports only the packages below it, and nothing in
``core`` imports streamlit."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "core"
# a package may import itself and the packages listed before it
LAYERS = ["engine", "nets", "runs", "views", "report"]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_each_layer_imports_only_the_layers_below_it():
    wrong = []
    for i, layer in enumerate(LAYERS):
        allowed = set(LAYERS[: i + 1])
        for path in sorted((CORE / layer).rglob("*.py")):
            for name in _imports(path):
                parts = name.split(".")
                if parts[0] == "core" and len(parts) > 1 and parts[1] not in allowed:
                    wrong.append(f"{path.relative_to(CORE)} imports {name}")
    assert not wrong, wrong
    assert sorted(p.name for p in CORE.iterdir() if p.is_dir() and p.name != "__pycache__") == (
        sorted(LAYERS)
    )


def test_core_never_imports_streamlit():
    users = [
        str(p.relative_to(CORE))
        for p in CORE.rglob("*.py")
        if any(n.split(".")[0] == "streamlit" for n in _imports(p))
    ]
    assert not users
