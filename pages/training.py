"""Training: loss curves of one or more runs, validation metrics and learning rate, a summary per run."""
import streamlit as st

from webapp import components
from webapp import ui
from webapp import figures
from webapp.escape import md
from seg.train import runlog

REFRESH_S = 5.0
MIXED_TABLES = ("mIoU is the mean over each run's own class table: a 2-class run (e.g. the lanes model) and a "
                "66-class run (the demo model) share this axis but not a scale, so compare runs of one table.")
NO_EVAL = "–"  # a best score of a run whose log holds no evaluation
NO_EVAL_HELP = ("the run's log holds no evaluation: it was trained without --eval-every, or has not reached its "
                "first evaluation yet.")

ctx = ui.context()
ui.header("Training progress", "Curves read from each run's metrics.jsonl; a run still writing its log refreshes by itself.")

# The bundled run first, then every run below the runs folder (the bundled one only once).
candidates = {}
if (ctx.config.bundled_run / runlog.METRICS_FILE).is_file():
    candidates[ctx.config.bundled_run.resolve()] = f"{ctx.config.bundled_run.name} (bundled)"
if ctx.runs is not None:
    for d in runlog.list_runs(ctx.runs, ctx.config.roots):
        candidates.setdefault(d.resolve(), runlog.run_name(d, ctx.runs))
elif ctx.errors.get("runs"):
    st.warning(f"Runs folder not used: {md(ctx.errors['runs'])}", icon=":material/warning:")
if not candidates:
    st.info("No runs found: point the sidebar's runs folder at a folder holding `metrics.jsonl` files "
            "(written by `python -m seg.train --out RUNDIR`).", icon=":material/info:")
    st.stop()

by_name = {name: path for path, name in candidates.items()}
chosen = st.multiselect("Runs", list(by_name), default=list(by_name)[:6], key="train_runs")
c1, c2, c3, c4 = st.columns([3, 1.2, 1.6, 1.4])
smoothing = c1.slider("Smoothing (EMA weight)", 0.0, 0.99, 0.6, 0.01, key="train_smoothing",
                      help="TensorBoard-style exponential moving average, debiased so the first steps are not "
                           "pulled toward zero. The raw curve is drawn faint behind.")
log_y = c2.toggle("Log scale", value=False, key="train_log")
x_axis = c3.radio("x axis", ["step", "time"], horizontal=True, key="train_x",
                  format_func={"step": "Step", "time": "Wall time"}.get,
                  help="Switching drops the charts' horizontal zoom (steps and minutes are different units); "
                       "the vertical zoom is kept. Log scale and the other controls keep both.")
auto = c4.toggle("Auto-refresh", value=True, key="train_auto", help=f"Re-read live runs every {REFRESH_S:.0f} s.")


def fmt_duration(s):
    if s is None:
        return None
    s = int(s)
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"


def some(items: list, n: int = 10) -> str:
    """The first `n` of `items`, comma-separated, with "…" when there are more."""
    return ", ".join(map(str, items[:n])) + (" …" if len(items) > n else "")


def load_runs(names: list[str]) -> list:
    """The chosen runs' parsed logs; a run that cannot be read is one error line, and a run with broken lines
    or bad values (NaN, text where a number belongs) one warning line naming it."""
    runs = []
    for name in names:
        try:
            runs.append(ui.load_run(by_name[name], name))
        except (OSError, runlog.RunLogError) as e:
            st.error(md(f"{name}: {e}"), icon=":material/error:")
    for r in runs:
        said = []
        if r.bad_lines:
            said.append(f"skipped {len(r.bad_lines)} broken line{'s' * (len(r.bad_lines) != 1)} "
                        f"(line {some(r.bad_lines)})")
        if r.bad_values:
            said.append(f"left out {len(r.bad_values)} value{'s' * (len(r.bad_values) != 1)} that are not finite "
                        f"numbers ({some([f'line {n}: {k}' for n, k in r.bad_values], 5)})")
        if said:
            st.warning(md(f"{r.name} ({r.path}): {' and '.join(said)}; the rest of the run is shown."),
                       icon=":material/warning:")
    return runs


def curves(runs: list) -> None:
    """Loss, validation mIoU and pixel accuracy, learning rate; each chart keeps the user's zoom."""
    # Each run keeps its color however the selection changes (colors are kept per session, by run name).
    colors = figures.run_colors([r.name for r in runs], st.session_state.get("_train_colors"))
    st.session_state["_train_colors"] = colors
    tags = {"chart_loss": f"{x_axis}|{'log' if log_y else 'linear'}", "chart_miou": f"{x_axis}|linear",
            "chart_acc": f"{x_axis}|linear", "chart_lr": f"{x_axis}|linear"}
    zoom = components.keep_zoom(tags, key="train_zoom")

    def chart(where, fig, key):
        where.plotly_chart(figures.with_ranges(fig, *components.ranges_for(zoom, key, tags[key])), key=key,
                           width="stretch")

    chart(st, figures.loss_figure(runs, smoothing, log_y, x_axis, colors), "chart_loss")
    p1, p2, p3 = st.columns(3)
    chart(p1, figures.series_figure(runs, "val_miou", "Validation mIoU", x_axis, percent=True, colors=colors),
          "chart_miou")
    chart(p2, figures.series_figure(runs, "val_pixel_acc", "Validation pixel accuracy", x_axis, percent=True,
                                    colors=colors), "chart_acc")
    chart(p3, figures.series_figure(runs, "lr", "Learning rate", x_axis, colors=colors), "chart_lr")
    if len(runs) > 1:
        st.caption(MIXED_TABLES)


def summary(runs: list) -> None:
    """One row per run: steps, losses, best scores, speed, duration and the status its log gives."""
    st.subheader("Summary")
    rows = []
    for r in runs:
        s = runlog.summarize(r)
        s["duration"] = fmt_duration(s.pop("duration_s"))
        s.pop("live")  # "status" comes from the log itself: its end record, or none
        for k in ("best_miou", "best_pixel_acc"):  # text, so a run without evaluations reads "–", not "None"
            s[k] = NO_EVAL if s[k] is None else f"{100 * s[k]:.1f}%"
        s["duration"] = s["duration"] or "–"
        rows.append(s)
    st.dataframe(
        rows, hide_index=True, width="stretch", key="train_summary",
        column_config={
            "run": st.column_config.TextColumn("Run"),
            "steps": st.column_config.NumberColumn("Steps", format="%d"),
            "last_loss": st.column_config.NumberColumn("Last loss", format="%.4f"),
            "best_loss": st.column_config.NumberColumn("Best loss", format="%.4f"),
            "best_miou": st.column_config.TextColumn("Best mIoU", help=NO_EVAL_HELP),
            "best_pixel_acc": st.column_config.TextColumn("Best pixel acc", help=NO_EVAL_HELP),
            "img_per_s": st.column_config.NumberColumn("img/s", format="%.1f"),
            "duration": st.column_config.TextColumn("Duration"),
            "status": st.column_config.TextColumn(
                "Status", help="From the log: its end record (finished, interrupted, stopped on NaN, crashed); "
                               "without one, live while it is being written, else stopped mid-run."),
        },
    )
    if any(r["best_miou"] == NO_EVAL for r in rows):
        st.caption(f"{NO_EVAL} under Best mIoU: {NO_EVAL_HELP}")


def calibration(runs: list) -> None:
    """Validation mIoU after each end-of-run calibration step, for the runs that had any."""
    stages = {r.name: runlog.calibration(r) for r in runs}
    stages = {k: v for k, v in stages.items() if v}
    if not stages:
        return
    st.subheader("End-of-run calibration")
    st.caption("Validation mIoU after each step that ran once training ended. Both fit on training statistics "
               "or held-out frames, never on the validation set shown here.")
    st.dataframe(
        [{"run": name, **s, "val_miou": None if s["val_miou"] is None else 100 * s["val_miou"]}
         for name, v in stages.items() for s in v],
        hide_index=True, width="stretch", key="train_calibration",
        column_config={
            "run": st.column_config.TextColumn("Run"),
            "stage": st.column_config.TextColumn("Stage"),
            "val_miou": st.column_config.NumberColumn("Val mIoU", format="%.1f%%"),
            "detail": st.column_config.TextColumn("Detail"),
        },
    )


def charts():
    """Everything drawn from the logs: redrawn as one fragment, every REFRESH_S while a run is live."""
    runs = load_runs(chosen)
    if not runs:
        st.info("Choose at least one run.", icon=":material/info:")
        return
    live = [r.name for r in runs if r.live]
    if live:
        st.caption(f":green[●] live: {', '.join(map(md, live))}"
                   + (f" — refreshing every {REFRESH_S:.0f} s" if auto else ""))
    curves(runs)
    summary(runs)
    calibration(runs)


# Only a live run needs polling; a finished run's page stays still.
any_live = auto and any(runlog.is_live(by_name[n]) for n in chosen)
st.fragment(charts, run_every=REFRESH_S if any_live else None)()
