"""Plotly figures for the app (no Streamlit here): training curves, per-class IoU, confusion matrix.

Every figure sets `uirevision`, so when a live page redraws it with new data Plotly keeps the user's
zoom, pan and hidden legend entries.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from .runlog import RunData, elapsed_s, ema

RUN_COLORS = qualitative.Plotly  # one color per run, same in every panel
X_TITLES = {"step": "step", "time": "wall time (min)"}


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str, revision: str, height: int = 380) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0.0, xanchor="left", font=dict(size=15)),
        xaxis_title=x_title,
        yaxis_title=y_title,
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1.0),
        hovermode="x unified",
        uirevision=revision,
    )
    return fig


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


def loss_figure(runs: list[RunData], smoothing: float, log_y: bool, x_axis: str = "step") -> go.Figure:
    """Training loss of each run: smoothed (debiased EMA) line over the raw curve drawn faint."""
    fig = go.Figure()
    for i, run in enumerate(runs):
        color = RUN_COLORS[i % len(RUN_COLORS)]
        x = _x(run, run.train, x_axis)
        y = [r["loss"] for r in run.train]
        if smoothing > 0:
            fig.add_trace(go.Scatter(
                x=x, y=y, mode="lines", line=dict(color=color, width=1), opacity=0.25,
                name=f"{run.name} (raw)", legendgroup=run.name, showlegend=False, hoverinfo="skip",
            ))
        fig.add_trace(go.Scatter(
            x=x, y=ema(y, smoothing), mode="lines", line=dict(color=color, width=2),
            name=run.name, legendgroup=run.name,
        ))
    _layout(fig, "Training loss", X_TITLES[x_axis], "loss", "loss")
    fig.update_yaxes(type="log" if log_y else "linear")
    return fig


def series_figure(runs: list[RunData], key: str, title: str, x_axis: str = "step", percent: bool = False) -> go.Figure:
    """One metric over time per run: eval metrics (val_miou, val_pixel_acc) or a train column (lr)."""
    fig = go.Figure()
    for i, run in enumerate(runs):
        rows = [r for r in (run.eval if key.startswith("val_") else run.train) if r.get(key) is not None]
        fig.add_trace(go.Scatter(
            x=_x(run, rows, x_axis), y=[r[key] for r in rows], name=run.name, legendgroup=run.name,
            mode="lines+markers" if key.startswith("val_") else "lines",
            line=dict(color=RUN_COLORS[i % len(RUN_COLORS)], width=2), showlegend=False,
        ))
    _layout(fig, title, X_TITLES[x_axis], "", key, height=280)
    if percent:
        fig.update_yaxes(tickformat=".0%")
    if key == "lr":
        fig.update_yaxes(exponentformat="e")
    return fig


def iou_bar_figure(rows: list[dict]) -> go.Figure:
    """Horizontal bars of per-class IoU (rows from appdata.per_class_rows), each in its class color."""
    fig = go.Figure(go.Bar(
        x=[r["iou"] for r in rows], y=[r["name"] for r in rows], orientation="h",
        marker=dict(color=[r["color"] for r in rows], line=dict(color="#888", width=0.5)),
        hovertemplate="%{y}: %{x:.1%}<extra></extra>",
    ))
    _layout(fig, "Per-class IoU", "IoU", "", "iou", height=max(260, 22 * len(rows) + 80))
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_layout(hovermode="closest")
    return fig


def confusion_figure(names: list[str], shares: np.ndarray) -> go.Figure:
    """Row-normalised confusion heatmap: rows = ground truth, columns = prediction."""
    fig = go.Figure(go.Heatmap(
        z=shares, x=names, y=names, colorscale="Blues", zmin=0, zmax=1,
        hovertemplate="truth %{y}<br>predicted %{x}<br>%{z:.1%} of the row<extra></extra>",
        colorbar=dict(tickformat=".0%"),
    ))
    side = max(320, 24 * len(names) + 160)
    _layout(fig, "Confusion matrix (row-normalised)", "predicted", "ground truth", "confusion", height=side)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(hovermode="closest")
    return fig
