"""Validation, Training and Home as a newcomer reads them (issue 24, items 12-22): A/B numbers and charts
named for both models, dashes with a reason instead of "None", captions that say what a score is over."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from appstandins import run_app, standin_env, standins, write_run  # noqa: F401 - fixtures
from webapp import components, figures, models, provenance
from webapp.models import iou_table, iou_table_view, points


def _texts(at) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "error", "warning", "info")
                     for e in getattr(at, kind))


def _chart_titles(at) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_training_summary_says_why_a_run_has_no_best_scores(standin_env, tmp_path):
    root = Path(standin_env["SEG_DATA"]) / "no_eval_runs"  # under an allowed folder
    write_run(root / "no-eval", steps=60, eval_every=1000)  # never evaluated
    write_run(root / "evaluated", steps=200)
    at = run_app("training")
    at.sidebar.text_input(key="src_runs").set_value(str(root)).run()
    at.multiselect(key="train_runs").set_value(["no-eval", "evaluated"]).run()
    assert not at.exception, at.exception
    summary = at.dataframe[0].value.set_index("run")
    assert summary.loc["no-eval", "best_miou"] == "–" and summary.loc["no-eval", "best_pixel_acc"] == "–"
    assert summary.loc["evaluated", "best_miou"] == "35.0%"  # 0.1 + 200 / (200 * 4)
    assert "–" in _texts(at) and "no evaluation" in _texts(at) and "None" not in _texts(at)
    # two runs on one mIoU axis: the chart says their class tables may differ (item 18)
    assert "own class table" in _texts(at)


def test_ab_delta_is_in_points_between_the_figures_shown():
    # 85.149% and 86.651% read 85.1% and 86.7%: the delta must read 1.6 points, not the raw 1.5
    assert points(0.85149, 0.86651) == "+1.6 pp"
    assert points(0.5, 0.5) == "+0.0 pp" and points(0.4, 0.3) == "-10.0 pp" and points(None, 0.3) is None
    rows = iou_table({"Road": 0.85149, "Sky": 0.0007, "Car": None}, {"Road": 0.86651, "Sky": 0.0307, "Car": 0.2})
    shown = iou_table_view(rows).to_html()
    assert "+1.6 pp" in shown and "+3.0 pp" in shown and "85.1%" in shown and "0.1%" in shown
    assert "B − A" in shown and "B - A" not in shown and "–" in shown  # Car: no A, no difference


def test_ab_validation_names_both_models_in_charts_and_metrics(standin_env, tmp_path):
    runs = Path(standin_env["SEG_RUNS"])
    shutil.copy(runs / "demo" / "model.pt", runs / "sweep" / "lr-high" / "model.pt")  # B: a second checkpoint
    try:
        at = run_app()
        (b,) = [s for s in at.sidebar.selectbox if s.label == "Compare with (A/B)"]
        b.set_value("sweep/lr-high · model.pt").run()
        at.switch_page("pages/validation.py").run()
        assert not at.exception, at.exception
        titles = _chart_titles(at)
        assert any(t.startswith("Per-class IoU · A") for t in titles)
        assert any(t.startswith("Per-class IoU · B") for t in titles)
        assert any(t.startswith("Confusion matrix (row-normalised) · A") for t in titles)
        assert any(t.startswith("Confusion matrix (row-normalised) · B") for t in titles)
        deltas = [m.proto.delta for m in at.metric if m.proto.delta]
        assert deltas and all(d.endswith(" pp") for d in deltas)
    finally:
        (runs / "sweep" / "lr-high" / "model.pt").unlink()


def test_validation_errors_panel_follows_show_only_these_classes(standin_env):
    at = run_app("validation")
    at.multiselect(key="val_only").set_value([13]).run()  # Road only
    assert not at.exception, at.exception
    captions = [img.caption for e in at.get("image") for img in e.proto.imgs]
    assert any(c.startswith("Errors: ") and "of the chosen classes' labelled pixels" in c for c in captions)


def test_held_out_look_caption_says_training_never_saw_it(tmp_path):
    held_out = provenance.data_caption(provenance.HELD_OUT_LOOK)
    assert "never saw" in held_out and "learned that world" not in held_out
    assert "learned that world" in provenance.data_caption(provenance.SYNTHETIC_ROOT / "synth_vistas")
    assert provenance.data_caption(tmp_path) is None


def test_home_names_how_many_validation_frames_training_scored(tmp_path):
    images = tmp_path / "validation" / "images"
    images.mkdir(parents=True)
    for i in range(32):
        (images / f"{i}.jpg").write_bytes(b"")
    n = provenance.data_origin({"data": str(tmp_path), "eval_limit": 32})["val_frames"]
    assert n == 32 and provenance.frames_scored(32, n) == "all 32 of its frames"
    assert provenance.frames_scored(10, n) == "the first 10 of its 32 frames"
    assert provenance.frames_scored(10, None) == "its first 10 frames"
    assert provenance.frames_scored(None, n) == "all 32 of its frames"


def test_home_inference_card_mentions_clips(standin_env):
    at = run_app()
    assert "clips" in " ".join(c.value for c in at.caption if "Drop your own frames" in c.value)


def test_hover_hint_is_one_short_caption_line():
    assert components.idle_hint(True, True) == "Hover: class · truth · confidence"
    assert components.idle_hint(False, False) == "Hover: class"
    assert "white-space: nowrap" in components.INSPECT_CSS and "seg-idle" in components.INSPECT_CSS


@pytest.mark.parametrize("old,new,want_x,want_y", [
    ("step|linear", "step|log", [0, 50], [-1.0, 0.0]),  # Log scale on: both kept, y in log10 units
    ("step|log", "step|linear", [0, 50], [0.1, 1.0]),
    ("step|linear", "time|linear", None, [0.1, 1.0]),  # x axis switched: steps are not minutes
])
def test_zoom_is_kept_across_log_scale_and_x_axis(old, new, want_x, want_y):
    y = [0.1, 1.0] if old.endswith("linear") else [-1.0, 0.0]
    zoom = {"chart_loss": {"tag": old, "x": [0, 50], "y": y}}
    x, y = components.ranges_for(zoom, "chart_loss", new)
    assert x == want_x and np.allclose(y, want_y)
    assert components.rescale([0.0, 1.0], "linear", "log") is None  # no log reading of zero


def test_chart_titles_sit_below_the_toolbar_row():
    fig = figures.series_figure([], "val_miou", "Validation mIoU")
    assert fig.layout.title.yref == "paper" and fig.layout.title.yanchor == "bottom"
    assert fig.layout.margin.t >= 60
