"""webapp.clips and the Inference page's clip panel: a clip's bytes give a playable clip, frames/s and class
shares; bad clips are one line; the page plays a bundled sample clip (AppTest)."""
from __future__ import annotations

import io

import av
import numpy as np
from streamlit.testing.v1 import AppTest

from appstandins import Halves, clip_bytes, make_standins, no_legacy_pages_dir
from webapp import views
from webapp import clips, provenance
from seg.classes import VISTAS
from seg.paths import REPO_ROOT


def test_run_clip_gives_mp4_and_shares(tmp_path):
    calls = []
    res = clips.run_clip(Halves(), "../../etc/Drive.MOV", clip_bytes(tmp_path / "a.mp4"),
                            on_frame=lambda d, t: calls.append(d), max_frames=4)
    assert isinstance(res, clips.ClipResult) and res.frames == 4 and res.capped and calls == [1, 2, 3, 4]
    with av.open(io.BytesIO(res.video)) as c:
        assert len(list(c.decode(video=0))) == 4 and c.streams.video[0].codec_context.name == "h264"
    assert res.shares.shape == (4, VISTAS.num_classes)
    assert res.shares[:, 13].tolist() == [0.5] * 4 and res.shares[:, 27].tolist() == [0.5] * 4
    fig = clips.share_figure(res.shares, res.fps, VISTAS)
    assert sorted(t.name for t in fig.data) == ["Road", "Sky"] and list(fig.data[0].x) == [0, 0.1, 0.2, 0.3]


def test_run_clip_errors_are_values(tmp_path, monkeypatch):
    bad = clips.run_clip(Halves(), "notes.mp4", b"not a video")
    assert isinstance(bad, views.InferenceFailure) and bad.message.startswith("notes.mp4: not a readable video")
    monkeypatch.setattr(clips, "MAX_CLIP_MB", 0)
    big = clips.run_clip(Halves(), "big.mp4", b"x" * 10)
    assert isinstance(big, views.InferenceFailure) and "over the 0 MB limit" in big.message


def inference_page_with_clip(tmp_path, monkeypatch, n: int) -> AppTest:
    """The Inference page over stand-ins whose samples folder holds drive.mp4 of `n` frames."""
    no_legacy_pages_dir(monkeypatch)
    env = make_standins(tmp_path / "standins", n_samples=1)
    clip_bytes(tmp_path / "standins" / "samples" / "drive.mp4", n=n)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=120)
    at.run()
    return at.switch_page("pages/inference.py").run()


def test_inference_page_plays_a_sample_clip(tmp_path, monkeypatch):
    at = inference_page_with_clip(tmp_path, monkeypatch, 5)
    assert at.multiselect(key="inf_clips").options == ["drive.mp4"]
    at.multiselect(key="inf_clips").set_value(["drive.mp4"]).run()
    assert not at.exception, at.exception
    assert any("5 frames" in str(c.value) and "frames/s" in str(c.value) for c in at.caption)
    assert len(at.get("video")) == 1 and len(at.get("plotly_chart")) >= 1


def test_clip_chart_series_get_distinct_colours():
    navies = [VISTAS.index(n) for n in ("Car", "Truck", "Bus", "Utility Pole")]
    shares = np.zeros((3, VISTAS.num_classes), np.float32)
    shares[:, navies] = 0.25
    fig = clips.share_figure(shares, 10.0, VISTAS)
    rgb = [np.array([int(t.line.color[k:k + 2], 16) for k in (1, 3, 5)]) for t in fig.data]
    assert len(rgb) == 4 and min(np.linalg.norm(a - b) for i, a in enumerate(rgb) for b in rgb[i + 1:]) > 100


def test_bundled_sample_clip_is_named_synthetic(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "SYNTHETIC_ROOT", tmp_path / "standins")  # as the bundled assets/ are
    at = inference_page_with_clip(tmp_path, monkeypatch, 3)
    assert "synthetic" in at.multiselect(key="inf_clips").label
    at.multiselect(key="inf_clips").set_value(["drive.mp4"]).run()
    assert not at.exception, at.exception
    assert any("drive.mp4" in str(m.value) and "synthetic sample clip" in str(m.value) for m in at.markdown)
