"""Sweeps: start a preset or a width x depth x seed grid of runs in the background, follow
every sweep in the store, watch its TO-score curves fill in as its runs finish, and read the
report's verdicts on its finished runs."""

import streamlit as st

from core.report.document import verdict_markdown
from core.runs.config import ARCHITECTURES, DATASETS
from core.runs.presets import PRESETS, estimate_cost, get_preset
from core.runs.store import RunStore
from core.runs.sweep import EXECUTORS, SweepRecord, SweepSpec, list_sweeps, sweep_configs
from core.views.dashboard import TO_SCORE_WORDS, check_runnable, sweep_rows
from core.views.progress import estimate_words, job_seconds_left
from core.views.sweeps import (
    GRID_BASE,
    curves_figure,
    grid_name,
    grid_spec,
    preset_label,
    run_states,
    store_stages,
    sweep_curves,
    sweep_seconds_left,
    sweep_status,
    sweep_table,
)
from pages._common import REFRESH, chart, export_table, jobs, runs_dir, store, through_app
from pages._running import costs, rates, show_job

through_app()

EXECUTOR_WORDS = {
    "serial": "serial: one run after another in the server",
    "ray": "Ray: every run a task on a local Ray instance, as many at once as there are CPUs",
}


@st.cache_data(show_spinner="Counting the preset's cost...")
def preset_cost(name: str) -> dict:
    return estimate_cost(name)


def runs_left_seconds(name: str) -> tuple[float | None, int]:
    """Seconds for the preset's runs not yet in the store, one after another, and how many."""
    configs = sweep_configs(get_preset(name).specs)
    s = store()
    states = {c.run_id: "finished" for c in configs if s.stage(c.run_id) == "results"}
    return sweep_seconds_left(configs, states, rates(configs[0])), len(configs) - len(states)


def start(specs: tuple[SweepSpec, ...], name: str, what: str, executor: str) -> None:
    """Check each dataset of the sweep can load here (one st.error naming ``what`` if not),
    then start it as a background job."""
    firsts = {c.data.name: c for c in reversed(sweep_configs(specs))}
    for config in firsts.values():
        try:
            check_runnable(config)
        except ValueError as exc:
            st.error(f"Cannot run {what}: {exc}")
            return
    job = jobs().start_sweep(specs, store(), name=name, executor=executor)
    st.session_state["sweep_job"], st.session_state["sweep"] = job.key, job.state().target
    st.rerun()


def preset_form(executor: str) -> None:
    names = list(PRESETS)
    name = st.selectbox(
        "Preset", names, index=names.index("tiny"), key="sweep_preset", format_func=preset_label
    )
    cost = preset_cost(name)
    left, todo = runs_left_seconds(name)
    lo, hi = cost["parameters"]
    st.markdown(
        f"**{cost['runs']} runs**, {lo:,} to {hi:,} parameters per network. Cost model: "
        f"{cost['PFLOP']:.3g} PFLOP, about {cost['GPU minutes']} GPU minutes at 10 TFLOP/s. "
        + (
            f"On this machine, {todo} runs are not in the store yet: "
            f"{estimate_words(left, rates(get_preset(name).first))} one after another."
            if todo
            else "Every run is in the store already."
        )
    )
    if get_preset(name).device == "gpu":
        st.caption("This preset is meant for a GPU and the paper's datasets (torchvision files).")
    if st.button("Start sweep", type="primary", key="start_sweep"):
        start(get_preset(name).specs, name, f"the preset {name}", executor)


def grid_form(executor: str) -> None:
    b = GRID_BASE
    st.caption(
        "Every combination of the widths, depths and seeds (comma-separated) for one dataset "
        f"and architecture; the other settings are the tiny preset's ({b.data.n_train} "
        f"training examples, {b.train.minima} minima, {b.train.steps} training steps, "
        f"{b.paths.steps} path steps). For other settings use `python -m core sweep`."
    )
    with st.form("sweep_grid"):
        c = st.columns(5)
        dataset = c[0].selectbox("Dataset", DATASETS, index=DATASETS.index(b.data.name))
        arch = c[1].selectbox("Architecture", ARCHITECTURES, index=ARCHITECTURES.index("mlp"))
        widths = c[2].text_input("Widths", "4, 8", key="grid_widths")
        depths = c[3].text_input("Depths", "1, 2", key="grid_depths")
        seeds = c[4].text_input("Seeds", "0", key="grid_seeds")
        submitted = st.form_submit_button("Start grid", type="primary")
    if submitted:
        try:
            spec = grid_spec(dataset, arch, widths, depths, seeds)
        except ValueError as exc:
            st.error(f"Cannot start this grid: {exc}")
            return
        start((spec,), grid_name(spec), "this grid", executor)


st.title("Sweeps")
st.markdown(
    "A sweep is a grid of runs (widths, depths, regimes, seeds) that tests Observation 1 of "
    "the paper: the TO-score shrinks as networks get wider and deeper. A sweep runs in the "
    "background; finished runs are reused, so starting it again resumes it. Sweeps started "
    "from the command line (`python -m core sweep`) are listed here too."
)

st.subheader("Start a sweep")
executor = st.radio(
    "Executor",
    EXECUTORS,
    horizontal=True,
    key="sweep_executor",
    format_func=EXECUTOR_WORDS.get,
)
preset_tab, grid_tab = st.tabs(["A preset", "A width x depth x seed grid"])
with preset_tab:
    preset_form(executor)
with grid_tab:
    grid_form(executor)
if "sweep_job" in st.session_state:
    show_job(st.session_state["sweep_job"])


def running_runs(records: list[SweepRecord]) -> set[str]:
    """Runs being computed now: by a job of this server, or by any process holding the
    run's lock (a sweep from the command line)."""
    s = store()
    out = {j.state().run_id for j in jobs().running(s)}
    for rec in records:
        out |= {r for r in rec.run_ids if s.stage(r) != "results" and s.busy(r)}
    return out


def sweep_words(rec: SweepRecord, status, states: dict[str, str]) -> str:
    """How far the sweep is, and (while a job of this server runs it) the time left."""
    words = (
        f"{status.finished} of {status.total} runs finished, {status.running} running, "
        f"{status.failed} failed, {status.missing} not done"
    )
    job = jobs().find("sweep", store(), rec.sweep_id)
    if job is None or not job.running:
        return words
    s = job.state()
    if s.run_id not in states:
        return words
    config = store().config(s.run_id)
    current = job_seconds_left(s, costs(config), rates(config))
    total = sweep_seconds_left(sweep_configs(rec.specs), states, rates(config), current)
    return words + f"; {estimate_words(total, rates(config), ' left')}"


def sweeps_view(ticking: bool) -> None:
    s = store()
    records = list_sweeps(s)
    running = running_runs(records)
    if ticking and not running:
        st.rerun()  # the sweep ended: stop refreshing
    stages = {rec.sweep_id: store_stages(s, rec.run_ids) for rec in records}
    statuses = [sweep_status(r, stages[r.sweep_id], running) for r in records]
    st.dataframe(sweep_table(statuses, records), hide_index=True)
    ids = [r.sweep_id for r in records]
    if st.session_state.get("sweep") not in ids:
        st.session_state["sweep"] = ids[0]
    label = {r.sweep_id: f"{r.sweep_id} {r.name}" for r in records}
    sid = st.selectbox("Sweep", ids, key="sweep", format_func=label.get)
    i = ids.index(sid)
    rec, status = records[i], statuses[i]
    states = run_states(rec, stages[sid], running)
    st.progress(status.fraction, text=sweep_words(rec, status, states))
    for rid, why in rec.errors.items():
        if states.get(rid) == "failed":
            st.caption(f"Run {rid} failed: {why}")
    if status.finished < status.total and not status.running:
        if st.button("Resume this sweep", key="resume_sweep", help="Finished runs are reused"):
            job = jobs().start_sweep(rec.specs, s, name=rec.name, executor="serial")
            st.session_state["sweep_job"] = job.key
            st.rerun()
    curves_of(rec, s)
    verdicts_of(rec, [r for r, state in states.items() if state == "finished"])


@st.cache_data(ttl=60, show_spinner="Computing the report's verdicts...")
def report_verdicts(root: str, sweep_id: str, finished: tuple[str, ...]) -> str:
    """The report's verdicts (cached per sweep and set of finished runs, for a minute so
    escape results saved meanwhile show up)."""
    return verdict_markdown(RunStore(root), sweep_id)


def verdicts_of(rec: SweepRecord, finished: list[str]) -> None:
    """The verdict sentences ``python -m core report`` writes for this sweep, from its
    finished runs."""
    st.subheader("Report verdicts")
    if not finished:
        st.info("The report's verdicts show here once a run of this sweep has finished.")
        return
    st.caption(
        f"What `python -m core report {rec.sweep_id}` says in its Summary and Escapability "
        f"sections, from the {len(finished)} finished runs of this sweep (the report's own "
        "functions; its uncertainty section and figures are left out here)."
    )
    st.markdown(report_verdicts(runs_dir(), rec.sweep_id, tuple(sorted(finished))))


def curves_of(rec: SweepRecord, s: RunStore) -> None:
    """TO-score vs width and vs depth from the sweep's finished runs, and their table."""
    infos = {r.run_id: r for r in s.list()[0] if r.run_id in set(rec.run_ids)}
    kind = st.radio(
        "TO-score",
        ["sum", "max"],
        horizontal=True,
        key="sweep_kind",
        format_func={"sum": "sum of segments", "max": "longest segment"}.get,
    )
    st.caption(
        TO_SCORE_WORDS[kind] + ", in loss units; seeds averaged, the band is their range. "
        "Dashed: the same runs' minima aligned modulo permutation symmetry (runs computed "
        "with `--align weight-matching`), where the sweep has them."
    )
    y_label = TO_SCORE_WORDS[kind].split(":")[0] + " (loss units)"
    cols = st.columns(2)
    for col, by, word in ((cols[0], "width", "hidden width"), (cols[1], "depth", "depth")):
        curves = sweep_curves(rec, infos, by, kind)
        with col:
            if curves is None:
                st.info(f"No grid of this sweep varies the {by}.")
            elif curves.n_runs == 0:
                st.info(f"No run of the {by} series has finished yet.")
            else:
                fig = curves_figure(curves, word, y_label)
                chart(fig, f"sweep_{by}", export_name=f"sweep-{rec.sweep_id}-{by}")
    rows = sweep_rows([infos[r] for r in rec.run_ids if r in infos])
    if rows:
        st.dataframe(rows, hide_index=True)
        export_table(rows, f"sweep-{rec.sweep_id}")


st.subheader("Sweeps in the store")
if not list_sweeps(store()):
    st.info(f"No sweeps in `{runs_dir()}` yet: start one above (the tiny preset takes seconds).")
    st.stop()
ticking = bool(running_runs(list_sweeps(store())))
st.fragment(sweeps_view, run_every=REFRESH if ticking else None)(ticking)
