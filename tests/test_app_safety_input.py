"""Hostile inputs the app once answered with a traceback (issue 23.4): NaN/Infinity and wrong-typed values in
a run's metrics.jsonl, a 65535x1 frame, a clip at 1/60000 frames/s, a label PNG declaring 20000x20000. Each
is now one line in place and the rest of the page is served."""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

import hostile
from appstandins import Halves, clip_bytes, kitti_frame, run_app, standin_env, standins, write_run  # noqa: F401
from conftest import write_vistas
from webapp import clips, views

SLOW = Fraction(1, 60000)  # frames/s: one frame every 16 hours 40 minutes


def _chart_names(at) -> set[str]:
    return {t.get("name") for c in at.get("plotly_chart") for t in json.loads(c.proto.spec)["data"]}


# ---- Training: bad values in one run -------------------------------------------------------------------


def write_bad_run(run_dir: Path) -> Path:
    """A run whose log holds NaN, Infinity, text and lists where numbers belong, a step "abc" and a `[1,2,3]`."""
    write_run(run_dir, steps=60)
    rows = [{"step": 80, "loss": float("nan"), "lr": "abc", "img_per_s": 14.0, "time": float("nan")},
            {"step": 100, "loss": float("inf"), "lr": 1e-4, "img_per_s": [1, 2], "time": float("inf")},
            {"step": 100, "val_miou": "high", "val_pixel_acc": float("-inf")},
            {"step": "abc", "loss": 1.0}, [1, 2, 3]]
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    return run_dir


def test_bad_values_in_one_run_leave_every_run_charted(standin_env, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    write_run(runs / "good", steps=80)
    write_bad_run(runs / "bad")
    monkeypatch.setenv("SEG_RUNS", str(runs))
    at = run_app("training")
    assert {"bad", "good"} <= set(at.multiselect(key="train_runs").value)
    assert {"good", "bad"} <= _chart_names(at) and len(at.get("plotly_chart")) == 4
    summary = at.dataframe[0].value.set_index("run")
    assert summary.loc["good", "steps"] == 80 and summary.loc["bad", "steps"] == 100
    (warning,) = [w.value for w in at.warning]
    assert warning.startswith("bad (") and "skipped 2 broken lines (line 7, 8)" in warning, warning
    assert "left out 8 values that are not finite numbers (line 4: loss, line 4: lr, line 4: time" in warning
    assert "\n" not in warning
    at.radio(key="train_x").set_value("time").run()  # wall time: the NaN time was int()ed for the duration
    assert not at.exception, at.exception


# ---- Inference: a strip JPEG cannot hold, a clip at 1/60000 frames/s ---------------------------------


def test_a_65535x1_frame_is_shown_with_the_rest_of_the_batch(standin_env, tmp_path, monkeypatch):
    samples = tmp_path / "samples"
    samples.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1, 65535, 3), dtype=np.uint8)).save(samples / "a_strip.png")
    kitti_frame(samples / "b_frame.png")
    monkeypatch.setenv("SEG_SAMPLES", str(samples))
    at = run_app("inference")
    at.multiselect(key="inf_samples").set_value(["a_strip.png", "b_frame.png"]).run()
    assert not at.exception, at.exception
    assert not at.error and [m.value for m in at.markdown if m.value.startswith("**")] == [
        "**a_strip.png**", "**b_frame.png**"]
    assert "65535×1 px" in "\n".join(c.value for c in at.caption)
    assert len(at.get("download_button")) == 5  # 2 per frame + "Download all"


def test_a_frame_that_fails_while_shown_is_one_line_and_the_others_are_served(standin_env, tmp_path, monkeypatch):
    samples = tmp_path / "samples"
    kitti_frame(samples / "a.png")  # 1242 wide: its label PNG fails below
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(samples / "b.png")
    monkeypatch.setenv("SEG_SAMPLES", str(samples))
    real = views.label_png_bytes

    def fails_for_a(labels, classes):
        if labels.shape[1] == 1242:
            raise MemoryError("stand-in failure")
        return real(labels, classes)

    monkeypatch.setattr(views, "label_png_bytes", fails_for_a)
    at = run_app("inference")
    at.multiselect(key="inf_samples").set_value(["a.png", "b.png"]).run()
    assert not at.exception, at.exception
    (error,) = [e.value for e in at.error]
    assert error.startswith("a.png: could not be segmented or shown (MemoryError: stand-in failure)"), error
    # the half-drawn frame was replaced by its error; the next one is served whole
    assert [m.value for m in at.markdown if m.value.startswith("**")] == ["**b.png**"]
    assert len(at.get("download_button")) == 2


def test_a_clip_at_one_frame_per_16_hours_is_a_value_not_a_traceback(tmp_path):
    res = clips.run_clip(Halves(), "slow.mp4", clip_bytes(tmp_path / "slow.mp4", n=3, w=64, h=48, rate=SLOW))
    if isinstance(res, views.InferenceFailure):
        assert res.message.startswith("slow.mp4: ") and "\n" not in res.message
    else:  # the clip reader may learn to take such a clip; then it is a clip like any other
        assert isinstance(res, clips.ClipResult) and res.frames == 3


def test_a_clip_at_one_frame_per_16_hours_leaves_the_page_served(standin_env, tmp_path, monkeypatch):
    samples = tmp_path / "samples"
    samples.mkdir()
    clip_bytes(samples / "a_slow.mp4", n=3, w=64, h=48, rate=SLOW)
    clip_bytes(samples / "b_drive.mp4", n=3, w=64, h=48)
    kitti_frame(samples / "frame.png")
    monkeypatch.setenv("SEG_SAMPLES", str(samples))
    at = run_app("inference")
    at.multiselect(key="inf_clips").set_value(["a_slow.mp4", "b_drive.mp4"]).run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert all(e.startswith("a_slow.mp4: ") for e in errors) and len(errors) + len(at.get("video")) == 2
    assert len(at.get("video")) >= 1 and "**frame.png**" in [m.value for m in at.markdown]


# ---- Home: a label PNG declaring 20000x20000 -------------------------------------------------------------


def test_a_bomb_label_is_one_line_on_home_and_the_page_is_served(standin_env, tmp_path, monkeypatch):
    data = write_vistas(tmp_path / "data", n_train=1, n_val=2, size=(64, 48))
    bomb = hostile.bomb_label(data)
    monkeypatch.setenv("SEG_DATA", str(data))
    at = run_app()
    (line,) = [c.value for c in at.caption if bomb.name in c.value]
    assert line.startswith(":red[") and "pixel limit" in line and "\n" not in line, line
    assert [s.value for s in at.subheader][-2:] == ["This machine", "Pages"]
