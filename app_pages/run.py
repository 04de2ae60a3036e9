"""Run: choose the settings of an experiment, run it with progress, open the result."""

import streamlit as st

from app_pages._common import store
from app_pages._running import open_run, pending_notice, run_with_progress
from core.config import ARCHITECTURES, DATASETS, DEVICES, PAIRS, PRECISIONS, REGIMES, RunConfig

D = RunConfig()  # the defaults shown in the form

st.title("Run an experiment")
st.markdown(
    "A run trains several networks from independent random starts (each ends in a minimum of "
    "the training loss), joins pairs of minima by optimised paths, and computes the barcode. "
    "Every stage is saved as it finishes: an interrupted run resumes where it stopped, and "
    "the same settings always give the same run (its id is the hash of the settings)."
)
pending_notice()

with st.form("run_form"):
    st.markdown("**Network and data**")
    c1, c2, c3, c4 = st.columns(4)
    arch = c1.selectbox("Architecture", ARCHITECTURES, key="f_arch")
    dataset = c2.selectbox(
        "Dataset",
        DATASETS,
        key="f_dataset",
        help="digits and mnist1d are embedded (offline); the others come "
        "from torchvision and need the data on disk or a download.",
    )
    width = c3.number_input(
        "Width",
        min_value=1,
        value=D.model.width,
        key="f_width",
        help="Hidden units (MLP), channels (CNN, ResNet), embedding size (transformer).",
    )
    depth = c4.number_input(
        "Depth", min_value=1, value=D.model.depth, key="f_depth", help="Hidden layers / blocks."
    )
    c1, c2, c3, c4 = st.columns(4)
    n_train = c1.number_input("Training examples (0 = all)", min_value=0, value=0, key="f_n_train")
    n_test = c2.number_input("Test examples (0 = all)", min_value=0, value=0, key="f_n_test")
    data_root = c3.text_input(
        "Data folder (torchvision)", value=D.data.data_root, key="f_data_root"
    )
    download = c4.checkbox(
        "Allow download",
        value=False,
        key="f_download",
        help="Let torchvision download the dataset (needs the internet).",
    )

    st.markdown("**Training the minima**")
    c1, c2, c3, c4 = st.columns(4)
    minima = c1.number_input(
        "Minima (training starts)",
        min_value=1,
        value=D.train.minima,
        key="f_minima",
        help="Networks trained from independent "
        "initialisations; duplicates are merged. At least 2.",
    )
    steps = c2.number_input("Training steps (cap)", min_value=1, value=D.train.steps, key="f_steps")
    lr = c3.number_input(
        "Learning rate (Adam)", min_value=0.0, value=D.train.lr, format="%.4g", key="f_lr"
    )
    regime = c4.selectbox(
        "Learning-rate regime",
        REGIMES,
        key="f_regime",
        help="anneal: cosine decay to the final rate; constant: no decay.",
    )
    c1, c2, c3, c4 = st.columns(4)
    lr_final = c1.number_input(
        "Final learning rate",
        min_value=0.0,
        value=D.train.lr_final,
        format="%.4g",
        key="f_lr_final",
    )
    l2 = c2.number_input(
        "L2 weight",
        min_value=0.0,
        value=D.train.l2,
        format="%.4g",
        key="f_l2",
        help="Adds l2 · ‖θ‖²/2 to the loss, which gives cross-entropy true minima.",
    )
    grad_tol = c3.number_input(
        "Gradient tolerance",
        min_value=0.0,
        value=D.train.grad_tol,
        format="%.4g",
        key="f_grad_tol",
        help="A trained network counts as a minimum once its gradient norm is below this.",
    )
    batch = c4.number_input("Minibatch (0 = full batch)", min_value=0, value=0, key="f_batch")

    st.markdown("**Paths between minima**")
    c1, c2, c3, c4 = st.columns(4)
    pairs = c1.selectbox(
        "Pairs",
        PAIRS,
        key="f_pairs",
        help="all: every pair; mst: screen every pair briefly, then optimise the minimum "
        "spanning tree and every pair that could still change it (fewer paths).",
    )
    path_steps = c2.number_input(
        "Path steps (cap)", min_value=1, value=D.paths.steps, key="f_path_steps"
    )
    n_points = c3.number_input(
        "Points per path", min_value=1, value=D.paths.n_points, key="f_n_points"
    )
    max_points = c4.number_input(
        "Max points per path", min_value=1, value=D.paths.max_points, key="f_max_points"
    )
    c1, c2, c3, c4 = st.columns(4)
    force_tol = c1.number_input(
        "Force tolerance (x gradient scale)",
        min_value=0.0,
        value=D.paths.force_tol,
        format="%.4g",
        key="f_force_tol",
        help="A path has converged when the force perpendicular to it is below this times the "
        "pair's gradient scale, and the climbing point's gradient below a tenth of that.",
    )
    saddle_tol = c2.number_input(
        "Saddle tolerance",
        min_value=0.0,
        value=D.paths.saddle_tol,
        format="%.4g",
        key="f_saddle_tol",
        help="Bars shorter than this are indistinguishable from zero.",
    )
    seed = c3.number_input("Seed", min_value=0, value=D.seed, key="f_seed")
    device = c4.selectbox(
        "Device", DEVICES, key="f_device", help="auto: CUDA when this machine has it, else CPU."
    )
    with st.expander("Engine: minibatch, precision, memory"):
        c1, c2, c3, c4 = st.columns(4)
        path_batch = c1.number_input(
            "Path minibatch (0 = full data)",
            min_value=0,
            value=D.paths.batch_size or 0,
            key="f_path_batch",
            help="Examples per step for the first path steps (below); every later step, every "
            "convergence test and every saddle uses the whole train set.",
        )
        noisy_steps = c1.number_input(
            "Minibatch steps first",
            min_value=0,
            value=D.paths.noisy_steps,
            key="f_noisy_steps",
            help="How many path steps use the minibatch before the full-data steps.",
        )
        precision = c2.selectbox(
            "Path-step precision",
            PRECISIONS,
            key="f_precision",
            help="bfloat16 speeds up path steps on recent GPUs; saddles are always float32.",
        )
        compiled = c3.checkbox(
            "torch.compile path steps",
            key="f_compile",
            help="Worth it on a GPU; building the compiled loss takes tens of seconds.",
        )
        memory_mb = c4.number_input(
            "Memory budget, MiB (0 = automatic)",
            min_value=0,
            value=0,
            key="f_memory_mb",
            help="Activation memory per evaluation block; automatic: half the free GPU "
            "memory or a quarter of RAM.",
        )
    submitted = st.form_submit_button("Start run", type="primary")

if submitted:
    settings = {
        "data": {
            "name": dataset,
            "n_train": int(n_train) or None,
            "n_test": int(n_test) or None,
            "data_root": data_root,
            "download": bool(download),
        },
        "model": {"arch": arch, "width": int(width), "depth": int(depth)},
        "train": {
            "minima": int(minima),
            "regime": regime,
            "lr": float(lr),
            "lr_final": float(lr_final),
            "steps": int(steps),
            "batch_size": int(batch) or None,
            "l2": float(l2),
            "grad_tol": float(grad_tol),
        },
        "paths": {
            "pairs": pairs,
            "n_points": int(n_points),
            "max_points": int(max_points),
            "steps": int(path_steps),
            "force_tol": float(force_tol),
            "grad_tol": float(force_tol) / 10,
            "batch_size": int(path_batch) or None,
            "noisy_steps": int(noisy_steps),
            "saddle_tol": float(saddle_tol),
            "precision": precision,
            "compile": bool(compiled),
        },
        "seed": int(seed),
        "device": device,
        "memory_mb": int(memory_mb) or None,
    }
    try:
        config = RunConfig.from_dict(settings)
    except ValueError as exc:
        st.error(f"These settings cannot run: {exc}")
        st.stop()
    if store().stage(config.run_id) == "results":
        st.success(f"These settings were already run ({config.run_id}); opening the result.")
        open_run(config.run_id)
    result = run_with_progress(config)
    if result is not None:
        open_run(result.run_id)
