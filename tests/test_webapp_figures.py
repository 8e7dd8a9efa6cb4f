"""webapp.figures: log-axis tick labels, value labels, run colors kept by name, zoom ranges, hover units."""
import numpy as np
import pytest

from appstandins import write_run
from webapp import figures
from seg.train import runlog


def test_log_ticks_read_as_plain_numbers_covering_the_range():
    vals, text = figures.log_ticks(0.23, 3.1)
    assert vals == pytest.approx([0.2, 0.5, 1, 2, 5])
    assert text == ["0.2", "0.5", "1", "2", "5"]
    vals, text = figures.log_ticks(0.012, 0.09)
    assert text == ["0.01", "0.02", "0.05", "0.1"]
    assert figures.log_ticks(0, 1) == ([], [])


def test_loss_figure_on_a_log_axis_labels_ticks_by_value(tmp_path):
    run = runlog.load_run(write_run(tmp_path / "r", steps=400, every=20))
    fig = figures.loss_figure([run], 0.6, log_y=True)
    y = fig.layout.yaxis
    assert y.type == "log" and y.tickmode == "array"
    assert [float(t) for t in y.ticktext] == pytest.approx(list(y.tickvals))  # a label is its value, never "2" for 0.2
    losses = [r["loss"] for r in run.train]
    assert min(y.tickvals) <= min(losses) and max(y.tickvals) >= max(losses)
    assert figures.loss_figure([run], 0.6, log_y=False).layout.yaxis.tickvals is None
    assert "%{y:.4f}" in fig.data[-1].hovertemplate
    assert "min" in figures.loss_figure([run], 0.6, False, "time").data[-1].hovertemplate


def test_iou_bars_and_confusion_cells_carry_value_labels():
    rows = [{"name": "Bus", "iou": 0.488, "color": "#003c64"}, {"name": "Road", "iou": 0.9561, "color": "#804080"}]
    bar = figures.iou_bar_figure(rows).data[0]
    assert list(bar.text) == ["48.8%", "95.6%"]
    shares = np.array([[0.75, 0.25], [0.004, 0.996]])
    heat = figures.confusion_figure(["Road", "Sky"], shares).data[0]
    assert heat.texttemplate == "%{text}"
    assert np.asarray(heat.text).tolist() == [["75", "25"], ["", "100"]]  # under 0.5% stays blank


def test_run_colors_stay_with_their_run(tmp_path):
    first = figures.run_colors(["b", "c"])
    second = figures.run_colors(["a", "b", "c"], first)  # a run added in front of them
    assert second["b"] == first["b"] and second["c"] == first["c"] and second["a"] not in (first["b"], first["c"])
    runs = [runlog.load_run(write_run(tmp_path / n, steps=40), n) for n in ("a", "b")]
    fig = figures.loss_figure(runs, 0.0, False, colors={"a": "#111111", "b": "#222222"})
    assert [t.line.color for t in fig.data] == ["#111111", "#222222"]


def test_with_ranges_sets_or_leaves_autorange(tmp_path):
    run = runlog.load_run(write_run(tmp_path / "r", steps=100))
    fig = figures.with_ranges(figures.loss_figure([run], 0.5, False), [20, 60], None)
    assert list(fig.layout.xaxis.range) == [20, 60] and fig.layout.xaxis.autorange is False
    assert fig.layout.yaxis.range is None
