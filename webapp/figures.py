"""Plotly figures for the app (no Streamlit here): training curves, per-class IoU, confusion matrix.

Every figure sets `uirevision`, so when a live page redraws it with new data Plotly keeps the user's
zoom, pan and hidden legend entries. Run and class names are escaped (webapp.escape.html): Plotly reads HTML
in trace names, category labels and hover text, so a name must not become a link.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from seg.train.runlog import RunData, elapsed_s, ema
from webapp.escape import html

RUN_COLORS = qualitative.Plotly  # one color per run, same in every panel
TOP_MARGIN = 64  # px: the toolbar's row (about 30 px), then the title's
X_TITLES = {"step": "step", "time": "wall time (min)"}
X_HOVER = {"step": "step %{x:,}", "time": "%{x:.1f} min"}


def run_colors(names: list[str], previous: dict[str, str] | None = None) -> dict[str, str]:
    """A color per run name that stays put: names already colored keep their color, new names take the
    first color not in use (so adding or removing a run never recolors the others)."""
    colors = dict(previous or {})
    for name in names:
        if name not in colors:
            used = set(colors.values())
            free = [c for c in RUN_COLORS if c not in used]
            colors[name] = free[0] if free else RUN_COLORS[len(colors) % len(RUN_COLORS)]
    return colors


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str, revision: str, height: int = 380) -> go.Figure:
    # The legend sits below the plot and the title just above the plot area, under a top margin that holds
    # Plotly's toolbar (top right): on a narrow screen the toolbar would otherwise cover either.
    fig.update_layout(
        title=dict(text=title, x=0.0, xanchor="left", y=1.0, yref="paper", yanchor="bottom", pad=dict(b=6),
                   font=dict(size=15)),
        xaxis_hoverformat=".1f" if x_title == X_TITLES["time"] else ",",
        xaxis_title=x_title,
        yaxis_title=y_title,
        height=height,
        margin=dict(l=10, r=10, t=TOP_MARGIN, b=10),
        legend=dict(orientation="h", yanchor="top", y=-0.18, xanchor="left", x=0.0),
        hovermode="x unified",
        uirevision=revision,
    )
    return fig


def with_ranges(fig: go.Figure, x: list | None = None, y: list | None = None) -> go.Figure:
    """`fig` with the given axis ranges (as Plotly reports them: log axes in log10 units); None = autorange."""
    if x is not None:
        fig.update_xaxes(range=list(x), autorange=False)
    if y is not None:
        fig.update_yaxes(range=list(y), autorange=False)
    return fig


def log_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Tick values 1-2-5 per decade covering [lo, hi] (lo > 0), with plain labels ("0.2", "0.5", "1", "2").

    Plotly's own log ticks label minor ticks with their leading digit only, so 0.9 ... 0.2 read "9 ... 2".
    """
    lo, hi = float(lo), float(hi)
    if not (lo > 0 and hi >= lo and np.isfinite(hi)):
        return [], []
    vals = []
    for e in range(int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1):
        vals += [m * 10.0**e for m in (1, 2, 5)]
    inside = [v for v in vals if lo <= v <= hi]
    below = [v for v in vals if v < lo][-1:]  # one tick on each side, so the data is framed
    above = [v for v in vals if v > hi][:1]
    vals = below + inside + above
    return vals, [f"{v:.10g}" for v in vals]


def _x(run: RunData, rows: list[dict], x_axis: str) -> list[float]:
    """x values of `rows` (train or eval rows of `run`): steps, or minutes since the run started.

    Eval rows carry no time; their time is interpolated from the train rows' (step, time) pairs.
    """
    steps = [r["step"] for r in rows]
    if x_axis == "step":
        return steps
    pairs = [(r["step"], t) for r, t in zip(run.train, elapsed_s(run.train)) if t is not None]
    if not pairs:
        return [None] * len(rows)
    s, t = np.array(pairs, dtype=np.float64).T
    return (np.interp(steps, s, t) / 60.0).tolist()


def _color(run: RunData, i: int, colors: dict[str, str] | None) -> str:
    return (colors or {}).get(run.name) or RUN_COLORS[i % len(RUN_COLORS)]


def loss_figure(runs: list[RunData], smoothing: float, log_y: bool, x_axis: str = "step",
                colors: dict[str, str] | None = None) -> go.Figure:
    """Training loss of each run: smoothed (debiased EMA) line over the raw curve drawn faint.

    `colors` maps run names to colors (see `run_colors`); runs not in it are colored by position.
    """
    fig = go.Figure()
    finite = []
    for i, run in enumerate(runs):
        color = _color(run, i, colors)
        x = _x(run, run.train, x_axis)
        y = [r["loss"] for r in run.train]
        finite += [v for v in y if v is not None and np.isfinite(v) and v > 0]
        if smoothing > 0:
            fig.add_trace(go.Scatter(
                x=x, y=y, mode="lines", line=dict(color=color, width=1), opacity=0.25,
                name=f"{html(run.name)} (raw)", legendgroup=run.name, showlegend=False, hoverinfo="skip",
            ))
        fig.add_trace(go.Scatter(
            x=x, y=ema(y, smoothing), mode="lines", line=dict(color=color, width=2),
            name=html(run.name), legendgroup=run.name, hovertemplate=f"{X_HOVER[x_axis]}: loss %{{y:.4f}}",
        ))
    _layout(fig, "Training loss", X_TITLES[x_axis], "loss", "loss")
    fig.update_yaxes(type="log" if log_y else "linear")
    if log_y and finite:
        vals, text = log_ticks(min(finite), max(finite))
        fig.update_yaxes(tickmode="array", tickvals=vals, ticktext=text)
    return fig


def series_figure(runs: list[RunData], key: str, title: str, x_axis: str = "step", percent: bool = False,
                  colors: dict[str, str] | None = None) -> go.Figure:
    """One metric over time per run: eval metrics (val_miou, val_pixel_acc) or a train column (lr)."""
    fig = go.Figure()
    value = "%{y:.1%}" if percent else "%{y:.3g}"
    for i, run in enumerate(runs):
        rows = [r for r in (run.eval if key.startswith("val_") else run.train) if r.get(key) is not None]
        fig.add_trace(go.Scatter(
            x=_x(run, rows, x_axis), y=[r[key] for r in rows], name=html(run.name), legendgroup=run.name,
            mode="lines+markers" if key.startswith("val_") else "lines",
            line=dict(color=_color(run, i, colors), width=2), showlegend=False,
            hovertemplate=f"{X_HOVER[x_axis]}: {value}",
        ))
    _layout(fig, title, X_TITLES[x_axis], "", key, height=280)
    if percent:
        fig.update_yaxes(tickformat=".0%")
    if key == "lr":
        fig.update_yaxes(exponentformat="e")
    return fig


def iou_bar_figure(rows: list[dict], model: str | None = None) -> go.Figure:
    """Horizontal bars of per-class IoU (rows from views.per_class_rows), each in its class color; `model`
    (e.g. "A · demo") is named in the title when two models are shown."""
    fig = go.Figure(go.Bar(
        x=[r["iou"] for r in rows], y=[html(r["name"]) for r in rows], orientation="h",
        marker=dict(color=[r["color"] for r in rows], line=dict(color="#888", width=0.5)),
        hovertemplate="%{y}: %{x:.1%}<extra></extra>",
        text=[f"{r['iou']:.1%}" for r in rows], textposition="outside", cliponaxis=False,
    ))
    title = "Per-class IoU" + (f" · {html(model)}" if model else "")
    _layout(fig, title, "IoU", "", "iou", height=max(260, 22 * len(rows) + 80))
    fig.update_xaxes(range=[0, 1.12], tickformat=".0%", tickvals=[0, 0.25, 0.5, 0.75, 1.0])
    fig.update_layout(hovermode="closest")
    return fig


def confusion_figure(names: list[str], shares: np.ndarray, model: str | None = None) -> go.Figure:
    """Row-normalised confusion heatmap: rows = ground truth, columns = prediction; cells labelled in %.
    `names`: the classes' readable names, plain text; `model` (e.g. "B · demo") is named in the title."""
    shares = np.asarray(shares, dtype=np.float64)
    names = [html(n) for n in names]
    # Cell labels in whole percent; cells under 0.5% stay blank so the matrix stays readable.
    text = np.where(shares >= 0.005, np.char.mod("%d", np.rint(100 * shares).astype(int)), "")
    fig = go.Figure(go.Heatmap(
        z=shares, x=names, y=names, colorscale="Blues", zmin=0, zmax=1, text=text, texttemplate="%{text}",
        textfont=dict(size=9 if len(names) > 24 else 11),
        hovertemplate="truth %{y}<br>predicted %{x}<br>%{z:.1%} of the row<extra></extra>",
        colorbar=dict(tickformat=".0%"),
    ))
    side = max(320, 24 * len(names) + 160)
    title = "Confusion matrix (row-normalised)" + (f" · {html(model)}" if model else "")
    _layout(fig, title, "predicted", "ground truth", "confusion", height=side)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(hovermode="closest")
    return fig
