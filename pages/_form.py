"""The Run page's form, generated from the config's declarations (``core.runs.config.knob``):
one widget per field, keyed ``f_<section>_<name>``, with the field's label, help and default."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.runs.config import RunConfig, fields_of

HEADINGS = {
    "data": "Data",
    "model": "Network",
    "train": "Training the minima",
    "paths": "Paths between minima",
    "": "Seed and device",
}
COLUMNS = 4


def key_of(where: str) -> str:
    """The widget key of a config field: ``f_model_width`` for ``model.width``."""
    return "f_" + where.replace(".", "_")


def config_form(defaults: RunConfig) -> dict[str, Any]:
    """Draw a widget for every config field (call inside ``st.form``); returns the settings
    as ``RunConfig.from_dict`` takes them. Advanced fields go in an expander at the end."""
    groups: dict[str, list] = {}
    advanced = []
    for where, f, default in fields_of(defaults):
        if f.metadata["advanced"]:
            advanced.append((where, f, default))
        else:
            groups.setdefault(where.rpartition(".")[0], []).append((where, f, default))
    values = {}
    for section, items in groups.items():
        st.markdown(f"**{HEADINGS[section]}**")
        _rows(items, values)
    with st.expander("Engine: minibatch, precision, memory"):
        _rows(advanced, values)
    settings: dict[str, Any] = {}
    for where, v in values.items():
        section, _, name = where.rpartition(".")
        (settings.setdefault(section, {}) if section else settings)[name] = v
    return settings


def _rows(items, values) -> None:
    for start in range(0, len(items), COLUMNS):
        for col, (where, f, default) in zip(
            st.columns(COLUMNS), items[start : start + COLUMNS], strict=False
        ):
            values[where] = _widget(col, where, f, default)


def _widget(col, where: str, f, default) -> Any:
    md, kind, key = f.metadata, str(f.type), key_of(where)
    label, text = md["label"], md["help"][:1].upper() + md["help"][1:] + "."
    if md["choices"]:
        choices = list(md["choices"])
        return col.selectbox(label, choices, index=choices.index(default), key=key, help=text)
    if kind == "bool":
        return col.checkbox(label, value=default, key=key, help=text)
    if kind.startswith("str"):  # "" stands for None where the field may be None
        v = col.text_input(label, value=default or "", key=key, help=text).strip()
        return None if kind.endswith("None") and not v else v
    # no bounds on the widgets: a browser refuses an out-of-range number silently (a red
    # field), while validate names the field and the value in an st.error
    if kind.startswith("int"):
        v = col.number_input(label, value=default or 0, step=1, key=key, help=text)
        return None if kind.endswith("None") and v == 0 else int(v)
    v = col.number_input(label, value=default, format="%.4g", key=key, help=text)
    return float(v)
