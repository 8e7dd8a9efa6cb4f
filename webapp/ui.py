"""Streamlit pieces shared by app.py and the pages: the sidebar selection, cached loaders, legend chips.

Computation lives in seg/; this file only adds Streamlit caching and small display helpers around it.
The model is loaded once per process (st.cache_resource) and shared by every session; it is only read.
Decoded frames, predictions, confidences and segmented clips are kept in one cache bounded by bytes
(`pixel_cache`), also shared by every session. Text a user can choose (paths, file, run and class names) goes through
webapp.escape before Streamlit renders it as Markdown.
"""
from __future__ import annotations

import hashlib
import html
import os
import runpy
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from seg import viz
from seg.classmap import get_classmap
from seg.paths import REPO_ROOT, inside, printable
from seg.train import runlog
from webapp import config as appconfig
from webapp import escape, machine, models, provenance, views
from webapp.bytecache import ByteLRU

CTX_KEY = "_seg_ctx"
# Decoded frames, predictions, confidences and segmented clips kept for reruns (a slider moved), all sessions
# together: two 40-megapixel uploads' results (image, labels, confidence: 8 bytes a pixel), or hundreds of
# small ones.
PIXEL_CACHE_BYTES = 768 * 2**20


@dataclass
class Context:
    """What the sidebar resolved for this run of the script; a None path comes with an entry in `errors`.
    `compare`: the checkpoint chosen as B for the A/B mode of Validation and Inference (None: off)."""

    config: appconfig.AppConfig
    checkpoint: Path | None
    data: Path | None
    runs: Path | None
    errors: dict = field(default_factory=dict)
    compare: Path | None = None


OTHER = "Another file (type its path below)"
NO_COMPARE = "nothing"  # the A/B chooser's first option: A/B off


def _resolve(typed: str, key: str, roots) -> Path:
    path = appconfig.confine(typed, roots)
    if not (path.is_file() if key == "checkpoint" else path.is_dir()):
        raise ValueError(f"'{typed}': no such {'file' if key == 'checkpoint' else 'folder'}")
    return path


def sidebar(config: appconfig.AppConfig) -> Context:
    """Draw the shared sidebar inputs and resolve them under the allowed roots."""
    sb = st.sidebar
    sb.markdown("### Sources")
    # The model chooser is drawn after the runs folder is resolved (it lists that folder's checkpoints), into
    # a box above the path field it fills; the A/B chooser goes under the path.
    model_box, path_box, compare_box = sb.container(), sb.container(), sb.container()
    values = {}
    errors = {}
    fields = [
        ("checkpoint", "Checkpoint file", config.checkpoint, "A seg checkpoint (.pt): model.pt of a run."),
        ("data", "Dataset folder", config.data, "Vistas layout: config.json, validation/images, validation/labels."),
        ("runs", "Runs folder", config.runs, "Every folder below it holding a metrics.jsonl is a run."),
    ]
    typed_of = {}
    for key, label, default, help_text in fields:
        where = path_box if key == "checkpoint" else sb
        start = appconfig.display_path(default) if f"src_{key}" not in st.session_state else ""  # else: the state's
        typed = typed_of[key] = where.text_input(label, value=start, key=f"src_{key}", help=help_text)
        try:
            values[key] = _resolve(typed, key, config.roots)
        except (ValueError, OSError) as e:  # OSError: e.g. [Errno 36] a name too long to look up
            values[key] = None
            short = typed if len(typed) <= 80 else typed[:77] + "…"
            errors[key] = str(e) if isinstance(e, ValueError) else f"'{short}': {e.strerror or e}"
            where.error(escape.md(errors[key]), icon=":material/block:")
    sb.caption("Relative paths start at the repository. Other folders: `streamlit run app.py -- --data DIR --runs DIR`.")
    found = models.find_checkpoints(values["runs"], config.roots)
    compare = _model_pickers(model_box, compare_box, found, values["checkpoint"], typed_of["checkpoint"])
    ctx = Context(config, errors=errors, compare=compare, **values)
    st.session_state[CTX_KEY] = ctx
    return ctx


def _model_pickers(box, compare_box, found, current: Path | None, typed: str) -> Path | None:
    """The model chooser (in `box`, above the checkpoint path: picking one writes its path there) and the A/B
    chooser (in `compare_box`); returns the checkpoint picked as B, or None."""
    labels = [f.label for f in found]
    by_label = {f.label: f.path for f in found}
    here = current.resolve() if current is not None else None
    index = next((k for k, f in enumerate(found) if here is not None and f.path.resolve() == here), len(found))

    def picked():
        choice = st.session_state.get(pick_key)
        if choice in by_label:
            st.session_state["src_checkpoint"] = appconfig.display_path(by_label[choice])

    # keyed on the typed path: typing another path draws a new chooser showing what it now points at
    pick_key = f"src_pick_{typed}"
    box.selectbox("Model", [*labels, OTHER], index=index, key=pick_key, on_change=picked,
                  help="Every checkpoint found: the bundled ones and each run's model.pt / best.pt under the runs "
                       "folder. Or type any checkpoint's path below.")
    others = [lbl for lbl in labels if here is None or by_label[lbl].resolve() != here]
    # "nothing" is an option like the others, not an empty value (None): an empty value would draw a clear
    # button beside "nothing" that has nothing to clear. A set value of None still reads as "nothing".
    b = compare_box.selectbox("Compare with (A/B)", [NO_COMPARE, *others], key="src_compare",
                      help="A second checkpoint: Validation and Inference then show both on the same frames, "
                           "where they disagree, and (Validation) both per-class IoUs.")
    return None if b == NO_COMPARE else by_label.get(b)


def context() -> Context:
    """The Context app.py resolved in this script run (pages are only run through app.py)."""
    ctx = st.session_state.get(CTX_KEY)
    if ctx is None:
        # Streamlit ran this page file without app.py: while no st.navigation call has happened yet in this
        # server process, a pages/ folder puts it in legacy mode, and a deep link (/validation) as the first
        # request runs the page directly. Run the router instead (it runs this page again, with the page
        # config and sidebar), then end this outer run.
        runpy.run_path(str(REPO_ROOT / "app.py"), run_name="__main__")
        st.stop()
    return ctx


def header(title: str, caption: str) -> None:
    """A page's title and the one-line caption under it."""
    st.title(title)
    st.caption(caption)


def stop_unless(ctx: Context, *keys: str) -> None:
    """Stop the page with a clear message when a source it needs is not usable."""
    names = {"checkpoint": "checkpoint", "data": "dataset folder", "runs": "runs folder"}
    for key in keys:
        if getattr(ctx, key) is None:
            st.warning(f"Set a valid {names[key]} in the sidebar: {escape.md(ctx.errors.get(key, 'not set'))}",
                       icon=":material/warning:")
            st.stop()


# ---- cached loaders ----------------------------------------------------------------------------------


def _stamp(path: Path) -> tuple[str, float, int]:
    """Cache key part that changes when the file changes."""
    s = Path(path).stat()
    return str(path), s.st_mtime, s.st_size


@st.cache_resource(show_spinner="Loading model…", max_entries=3)  # A, B and one more
def _load_predictor(path: str, mtime: float, size: int):
    # Here, not at the top: the Predictor brings torchvision (seconds), which the Training page never needs.
    from seg.infer.predictor import Predictor

    return Predictor(checkpoint=path)


def predictor(ctx: Context):
    """The shared Predictor for the selected checkpoint, or stops the page with the load error."""
    stop_unless(ctx, "checkpoint")
    try:
        return _load_predictor(*_stamp(ctx.checkpoint))
    except ValueError as e:  # CheckpointError: one line naming the file
        st.error(escape.md(e), icon=":material/error:")
        st.stop()


def predictor_b(ctx: Context):
    """(B's Predictor, webapp.models.Comparison) when the sidebar's A/B choice is set and both load and share a
    class table; None when A/B is off. A B that fails to load, or has no table in common with A, is one
    warning line and A/B stays off."""
    if ctx.compare is None or ctx.checkpoint is None:
        return None
    a = predictor(ctx)
    try:
        b = _load_predictor(*_stamp(ctx.compare))
    except (ValueError, OSError) as e:
        st.warning(f"A/B is off: {escape.md(e)}", icon=":material/compare:")
        return None
    cmp = models.compare(a.classes, a.meta.get("classmap"), b.classes, b.meta.get("classmap"))
    if cmp is None:
        st.warning(f"A/B is off: {escape.md(appconfig.display_path(ctx.compare))} predicts {len(b.classes)} classes "
                   f"that do not fold into A's {len(a.classes)} (or the other way), so their labels cannot be compared.",
                   icon=":material/compare:")
        return None
    return b, cmp


def ab_names(ctx: Context) -> tuple[str, str]:
    """Short names of A and B for captions: their folder names (model.pt's run), or file names."""
    def name(p: Path) -> str:
        return printable(p.parent.name if p.name == "model.pt" else f"{p.parent.name}/{p.name}")
    a, b = name(ctx.checkpoint), name(ctx.compare)
    return (a, b) if a != b else (f"A: {a}", f"B: {b}")


def model_key(pred) -> str:
    """Stable text identifying the loaded weights, for cache keys of functions given the model as `_pred`."""
    return f"{pred.meta.get('arch')}:{pred.meta.get('steps')}:{id(pred)}"


@st.cache_data(show_spinner=False, max_entries=64)
def _run(run_dir: bytes, name: str, mtime: float, size: int) -> runlog.RunData:
    # The folder as bytes: a name with undecodable bytes is a valid path, but not text the cache can hash.
    return runlog.load_run(os.fsdecode(run_dir), name)


def load_run(run_dir: Path, name: str) -> runlog.RunData:
    """A run's parsed log, re-read only when metrics.jsonl changes.

    Raises OSError when the log (links followed) has left the allowed folders since the run was listed.
    """
    log = Path(run_dir) / runlog.METRICS_FILE
    if not inside(log, context().config.roots):
        raise PermissionError(f"{printable(log)}: leads outside the folders this app may read")
    _, mtime, size = _stamp(log)
    return _run(os.fsencode(run_dir), name, mtime, size)


@st.cache_resource
def pixel_cache() -> ByteLRU:
    """The process's cache of decoded frames, predictions, confidences and clips (PIXEL_CACHE_BYTES at most)."""
    return ByteLRU(PIXEL_CACHE_BYTES)


def infer(pred, key: str, name: str, data: bytes):
    """views.run_inference kept in `pixel_cache` by (model key, name, file bytes' hash), so moving a slider
    does not re-run the model. The result's arrays are read-only: every session shares them."""
    cache_key = ("infer", key, name, hashlib.sha256(data).digest())
    return pixel_cache().get_or_compute(cache_key, lambda: views.run_inference(pred, name, data))


def mark_chosen(key: str) -> None:
    """on_change of a picker whose default may step aside: the user chose its value, so it stays."""
    st.session_state[f"{key}__chosen"] = True


def default_steps_aside(upload_key: str, picker_key: str) -> None:
    """on_change of an uploader: once the user uploads, the picker `picker_key`'s pre-selected default is
    cleared (it would render after, and be zipped with, the user's own files), unless the user chose it."""
    if st.session_state.get(upload_key) and not st.session_state.get(f"{picker_key}__chosen"):
        st.session_state[picker_key] = []


# ---- display helpers ---------------------------------------------------------------------------------


def image(where, rgb, caption: str) -> None:
    """`where.image` of an (H, W, 3) uint8 panel at full width, shrunk first so any frame shape can be sent
    (see views.fit_for_display); `caption` is the app's own text."""
    where.image(views.fit_for_display(rgb), caption=caption, width="stretch")


def legend_chips(rows: list[dict], show_share: bool = True) -> None:
    """Inline color swatches with class names (and pixel shares): the colors are the palette's hex values."""
    chips = []
    for r in rows:
        pct = r.get("text") or (f"{r['share']:.1%}" if r.get("share", 0) >= 0.0005 else "<0.1%")
        share = (f"<span style='opacity:.65;margin-left:6px'>{html.escape(pct)}</span>"
                 if (show_share and "share" in r) or "text" in r else "")
        chips.append(
            "<span style='display:inline-flex;align-items:center;margin:0 14px 6px 0;white-space:nowrap;font-size:0.9rem'>"
            f"<span style='width:14px;height:14px;border-radius:3px;background:{html.escape(r['color'])};"
            "border:1px solid rgba(128,128,128,.6);display:inline-block;margin-right:6px'></span>"
            f"{escape.html(r['name'])}{share}</span>"
        )
    st.markdown("<div style='line-height:1.4'>" + "".join(chips) + "</div>", unsafe_allow_html=True)


def legend_with_more(rows: list[dict]) -> None:
    """Legend chips of the classes that matter (viz.split_legend), the rest behind an "and K more" expander."""
    shown, rest = viz.split_legend(rows)
    legend_chips(shown)
    if rest:
        with st.expander(f"and {len(rest)} more (under {viz.LEGEND_KEY_SHARE:.1%} of the frame each, or past "
                         f"the {viz.LEGEND_KEY_TOP} largest)"):
            legend_chips(rest)


# ---- validation --------------------------------------------------------------------------------------

def _roots() -> tuple[str, ...]:
    return tuple(map(str, context().config.roots))


def dataset(root: str, split: str, stamp: float):
    """The split's VistasDataset (file pairs, class table; files linked from outside the allowed folders left
    out and listed in `.skipped`); rebuilt when the split folder changes."""
    return _dataset(root, split, stamp, _roots())


@st.cache_resource(max_entries=4)
def _dataset(root: str, split: str, stamp: float, roots: tuple[str, ...]):
    from seg.data.vistas import VistasDataset  # here: torchvision (seconds) stays off the Training page

    return VistasDataset(root, split, roots=tuple(map(Path, roots)))


@st.cache_resource(max_entries=6)
def _val_scores(_pred, key: str, root: str, split: str, stamp: float, space: str | None, fold: bool):
    from webapp.scores import ValScores  # here: it loads seg.data, so torchvision (seconds); see _dataset

    fold_map = get_classmap(space, _pred.classes) if fold else None
    classes = fold_map.table if fold_map else _pred.classes
    return ValScores(dataset(root, split, stamp), classes, space, fold_map)


def val_scores(pred, root: Path, split: str, stamp: float, cmp=None, which: str = "a"):
    """The per-frame score store of (model, dataset split): shared by every session, kept while the server
    runs, so frames scored once (even by a visit that left mid-way) are never predicted again. With `cmp`
    (A/B, webapp.models.Comparison) the store scores in the comparison's table, folding model `which`'s
    predictions into it where needed."""
    if cmp is None:
        return _val_scores(pred, model_key(pred), str(root), split, stamp, pred.meta.get("classmap"), False)
    fold = (cmp.map_a if which == "a" else cmp.map_b) is not None
    return _val_scores(pred, model_key(pred), str(root), split, stamp, cmp.truth, fold)


def score_frames(pred, store, indices: list[int], where) -> None:
    """Score `indices` into `store`, with a progress bar in the `where` container."""
    bar = where.progress(0.0, text="Scoring frames…")
    shown = -1
    for k, i in enumerate(indices, 1):
        store.score(pred, i)
        step = int(PROGRESS_STEPS * k / len(indices))
        if step != shown:
            shown = step
            bar.progress(k / len(indices), text=f"Scoring frame {k:,} of {len(indices):,} not scored yet…")
    bar.empty()


PROGRESS_STEPS = 50


def frame(root: str, split: str, stamp: float, index: int):
    """(image (H, W, 3) uint8, ground truth (H, W) uint8) of frame `index`, read-only (kept in `pixel_cache`)."""
    def read():
        image, target = dataset(root, split, stamp)[index]
        return image.permute(1, 2, 0).numpy().copy(), target.numpy().astype("uint8")

    return pixel_cache().get_or_compute(("frame", root, split, stamp, index), read)


def frame_confidence(pred, key: str, root: str, split: str, stamp: float, index: int):
    """(H, W) float32 top-class probability of frame `index` (predict_full; only when asked for), read-only."""
    def compute():
        with st.spinner("Computing confidence…"):
            return pred.predict_full(frame(root, split, stamp, index)[0]).confidence

    return pixel_cache().get_or_compute(("confidence", key, root, split, stamp, index), compute)


# ---- this machine ------------------------------------------------------------------------------------


@st.cache_data(show_spinner="Timing the model on this machine…", max_entries=4)
def machine_speed(_pred, key: str) -> dict:
    """Device summary and the measured ms of predict_full at the model's input size (once per model)."""
    return {**machine.device_summary(_pred), "ms": machine.measure_ms(_pred, _pred.input_size),
            "size": _pred.input_size}


@st.cache_data(show_spinner=False, max_entries=8)
def classes_present(root: str, split: str, stamp: float) -> tuple[int, int]:
    """(distinct classes in the split's label files, files read); see webapp.provenance.classes_in_labels."""
    ds = dataset(root, split, stamp)
    return provenance.classes_in_labels([lbl for _, lbl in ds.pairs], ds.classes)
