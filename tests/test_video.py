"""Clips (seg.infer.clipio, seg.infer.video, seg.infer.clip_cli) through `python -m seg.predict`: clips made
here with PyAV go in, a browser-playable H.264 clip and per-frame label PNGs equal to the Predictor's come
out; odd sizes encode; bad clips are one line each and leave nothing behind. `python -m seg.video`
(seg.infer.sample_clip) makes a sample clip from stills."""
from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from seg.checkpoint import make_checkpoint, save_checkpoint
from seg.classes import VISTAS
from seg.model import create_model
from seg.infer.video import LEGEND_TOP, burn_legend, overlay_frame
from seg.viz import legend, overlay_image
from conftest import run_main
from seg.infer.predict_cli import main as predict_main

ARCH = "lraspp_mobilenet_v3_large"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ckpt_path(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model(ARCH, VISTAS.num_classes).eval()
    for name, m in model.named_modules():  # a strong random head: varied label maps, not one class
        if isinstance(m, torch.nn.Conv2d) and "classifier" in name and m.out_channels == VISTAS.num_classes:
            torch.nn.init.normal_(m.weight, std=1.0)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, make_checkpoint(model, ARCH, VISTAS, (48, 64)))
    return path


@pytest.fixture(scope="module")
def predictor(ckpt_path):
    from seg.infer.predictor import Predictor

    return Predictor(ckpt_path, precision="fp32")


def frame(i: int, w: int, h: int) -> np.ndarray:
    """A moving street-ish picture: sky, road, a bright block sliding right, noise."""
    rng = np.random.default_rng(i)
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2] = (110, 150, 200)
    a[h // 2:] = (100, 90, 100)
    x = (i * 5) % max(1, w - w // 4)
    a[h // 3: 2 * h // 3, x: x + w // 4] = (200, 40, 40)
    return np.clip(a.astype(int) + rng.integers(-30, 30, a.shape), 0, 255).astype(np.uint8)


def make_clip(path: Path, n: int, w: int = 64, h: int = 48, fps: int = 10, codec: str = "libx264",
              fmt: str | None = None) -> Path:
    c = av.open(str(path), "w", format=fmt)
    s = c.add_stream(codec, rate=fps)
    s.width, s.height, s.pix_fmt = w, h, "yuv420p"
    for i in range(n):
        c.mux(s.encode(av.VideoFrame.from_ndarray(frame(i, w, h), format="rgb24")))
    c.mux(s.encode(None))
    c.close()
    return path


def decode(path: Path) -> tuple[list[np.ndarray], dict]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
        info = {"codec": s.codec_context.name, "pix_fmt": s.codec_context.pix_fmt, "rate": s.average_rate,
                "size": (s.codec_context.width, s.codec_context.height)}
    return frames, info


@pytest.fixture
def cli(capsys):
    """`python -m seg.predict ARGS` in this process."""
    return lambda *args: run_main(predict_main, capsys, *args)


def labels_of(folder: Path) -> list[np.ndarray]:
    return [np.array(Image.open(p)) for p in sorted(folder.glob("*.png"))]


def test_clip_in_playable_clip_and_label_pngs_out(tmp_path, ckpt_path, predictor, cli):
    clips = [make_clip(tmp_path / "drive.MP4", 8, fmt="mp4"),  # extension in any case
             make_clip(tmp_path / "b.webm", 3, codec="libvpx-vp9"),
             make_clip(tmp_path / "c.avi", 3, codec="mpeg4"),
             make_clip(tmp_path / "d.mkv", 3),
             make_clip(tmp_path / "e.mov", 3)]
    out = tmp_path / "out"
    r = cli(*clips, "--out", out, "--frames", "--checkpoint", ckpt_path, "--precision", "fp32")
    assert r.returncode == 0, r.stderr
    assert "frames/s" in r.stderr and "Traceback" not in r.stderr
    for clip in clips:
        src, _ = decode(clip)
        got, info = decode(out / f"{clip.stem}_overlay.mp4")
        assert (info["codec"], info["pix_fmt"], info["size"]) == ("h264", "yuv420p", (64, 48))
        assert len(got) == len(src) and info["rate"] == 10
        pngs = labels_of(out / clip.stem)
        assert [p.name for p in sorted((out / clip.stem).iterdir())] == [f"{i:06d}.png" for i in range(len(src))]
        for rgb, lab in zip(src, pngs):
            np.testing.assert_array_equal(lab, predictor.predict(rgb))
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left


def test_mp4_has_its_index_first_for_browsers(tmp_path, ckpt_path, cli):
    clip = make_clip(tmp_path / "a.mp4", 4)
    assert cli(clip, "--out", tmp_path / "o", "--checkpoint", ckpt_path).returncode == 0
    data = (tmp_path / "o" / "a_overlay.mp4").read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")  # +faststart: playable while downloading


def test_every_and_max_frames(tmp_path, ckpt_path, predictor, cli):
    clip = make_clip(tmp_path / "c.mp4", 10)
    out = tmp_path / "out"
    assert cli(clip, "--out", out, "--frames", "--every", 3, "--max-frames", 2, "--checkpoint", ckpt_path,
               "--precision", "fp32").returncode == 0
    src, _ = decode(clip)
    got, info = decode(out / "c_overlay.mp4")
    assert len(got) == 2 and info["rate"] == Fraction(10, 3)  # source frames 0 and 3, same duration per frame
    for lab, i in zip(labels_of(out / "c"), (0, 3)):
        np.testing.assert_array_equal(lab, predictor.predict(src[i]))


def test_frame_folder_with_odd_size_becomes_a_clip(tmp_path, ckpt_path, predictor, cli):
    seq = tmp_path / "image_02" / "data"
    seq.mkdir(parents=True)
    frames = [frame(i, 125, 75) for i in range(11)]
    for i, f in enumerate(frames):  # numbered without padding: 10 sorts after 9
        Image.fromarray(f).save(seq / f"{i}.png")
    out = tmp_path / "out"
    r = cli(seq, "--fps", 10, "--out", out, "--frames", "--checkpoint", ckpt_path, "--precision", "fp32")
    assert r.returncode == 0, r.stderr
    got, info = decode(out / "data_overlay.mp4")
    assert info["size"] == (126, 76) and len(got) == 11 and info["rate"] == 10  # padded to even sides
    for f, lab in zip(frames, labels_of(out / "data")):
        np.testing.assert_array_equal(lab, predictor.predict(f))
    # the picture is the overlay (away from the legend box), within H.264's loss
    want = np.asarray(overlay_image(frames[10], predictor.predict(frames[10]), VISTAS)).astype(int)
    assert np.abs(got[10][50:75, 60:125].astype(int) - want[50:75, 60:125]).mean() < 12


def test_legend_is_burnt_into_the_corner():
    img = Image.fromarray(np.full((375, 300, 3), 128, np.uint8))
    labels = np.zeros((375, 300), np.uint8)
    labels[:, 150:] = 13
    rows = sorted(legend(labels, VISTAS), key=lambda r: r["id"])
    out = np.asarray(burn_legend(img.copy(), rows))
    swatches = [tuple(out[y, x]) for y in range(0, 100) for x in range(0, 40)]
    for r in rows:  # each class's palette color is drawn exactly
        assert tuple(int(r["color"][k:k + 2], 16) for k in (1, 3, 5)) in swatches
    assert (out[300:, 200:] == 128).all()  # the rest of the frame is untouched


def test_burnt_legend_is_compact_and_lists_the_largest_classes():
    rgb = np.full((375, 1242, 3), 128, np.uint8)
    labels = np.zeros((375, 1242), np.uint8)
    for c in range(20):  # 20 classes, class c over (c + 1) columns of 6 px: class 19 is the largest
        labels[:, sum(6 * (k + 1) for k in range(c)):][:, :6 * (c + 1)] = c
    plain = overlay_frame(rgb, labels, VISTAS, 0.5, with_legend=False)
    out = overlay_frame(rgb, labels, VISTAS, 0.5)
    touched = np.argwhere((out != plain).any(axis=2))
    (y0, x0), (y1, x1) = touched.min(0), touched.max(0)
    assert (y0, x0) == (0, 0) and y1 < 375 * 0.3 and x1 < 1242 * 0.14  # a corner, not the frame's height
    swatches = {tuple(out[y, x]) for y in range(y1) for x in range(40)}
    pal = VISTAS.palette()
    top = sorted(range(20), key=lambda c: -(c + 1))[:LEGEND_TOP]
    assert all(tuple(pal[c]) in swatches for c in top) and tuple(pal[0]) not in swatches
    box = out[2, x1 - 2].astype(int)  # inside the box, past the text: the scene shows through
    assert 0 < box.sum() < plain[2, x1 - 2].astype(int).sum()


def test_no_legend_flag_leaves_the_frames_plain(tmp_path, ckpt_path, predictor, cli):
    clip = make_clip(tmp_path / "c.mp4", 2, w=128, h=96)
    assert cli(clip, "--out", tmp_path / "a", "--checkpoint", ckpt_path, "--precision", "fp32").returncode == 0
    r = cli(clip, "--out", tmp_path / "b", "--no-legend", "--checkpoint", ckpt_path, "--precision", "fp32")
    assert r.returncode == 0, r.stderr
    (with_legend, _), (plain, _) = decode(tmp_path / "a" / "c_overlay.mp4"), decode(tmp_path / "b" / "c_overlay.mp4")
    src, _ = decode(clip)
    want = np.asarray(overlay_image(src[0], predictor.predict(src[0]), VISTAS)).astype(int)
    corner = (slice(0, 12), slice(0, 40))
    assert np.abs(plain[0][corner].astype(int) - want[corner]).mean() < 12  # the overlay, no box
    assert np.abs(with_legend[0][corner].astype(int) - want[corner]).mean() > 12


def test_bad_clips_are_one_line_each_and_leave_nothing(tmp_path, ckpt_path, cli):
    good = make_clip(tmp_path / "good.mp4", 3)
    whole = make_clip(tmp_path / "long.mp4", 30).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(whole[: len(whole) // 2])  # truncated
    (tmp_path / "text.mov").write_text("not a video at all")
    (tmp_path / "empty.webm").write_bytes(b"")
    c = av.open(str(tmp_path / "noframes.mkv"), "w")  # a header announcing a video stream, then no frame
    s = c.add_stream("libx264", rate=10)
    s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    c.start_encoding()
    c.close()
    sound = av.open(str(tmp_path / "sound.mp4"), "w")  # audio only
    a = sound.add_stream("aac", rate=8000)
    silence = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
    silence.sample_rate, silence.pts = 8000, 0
    sound.mux(a.encode(silence))
    sound.mux(a.encode(None))
    sound.close()
    out = tmp_path / "out"
    bad = ["cut.mp4", "text.mov", "empty.webm", "noframes.mkv", "sound.mp4", "missing.avi"]
    r = cli(*[tmp_path / b for b in bad], good, "--out", out, "--frames", "--checkpoint", ckpt_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    errors = [l for l in r.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == len(bad) and [e.split(":")[1].strip() for e in errors] == bad
    assert sorted(p.name for p in out.iterdir()) == ["good", "good_overlay.mp4"]  # nothing partial


def test_bad_video_flags_are_usage_errors(tmp_path, cli):
    for flags in (["--every", "0"], ["--max-frames", "-1"], ["--fps", "x"], ["--fps", "inf"], ["--fps", "nan"],
                  ["--fps", "1e-300"], ["--fps", "5000"], ["--threads", "0"]):
        r = cli(tmp_path / "a.mp4", "--out", tmp_path / "o", *flags)
        assert r.returncode == 2 and "Traceback" not in r.stderr and "expected a" in r.stderr


def test_sample_clip_from_stills(tmp_path):
    """`python -m seg.video` itself (it imports no torch, so a subprocess is cheap)."""
    for i in range(2):
        Image.fromarray(frame(i, 63, 47)).save(tmp_path / f"s{i}.png")
    clip = tmp_path / "clips" / "sample.mp4"
    r = subprocess.run([sys.executable, "-m", "seg.video", str(tmp_path), "--out", str(clip), "--seconds", "2",
                        "--fps", "5"], capture_output=True, text=True, cwd=REPO,
                       env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout == f"{clip}: 10 frames\n"
    got, info = decode(clip)
    assert len(got) == 10 and info["rate"] == 5 and info["size"] == (64, 48)
    err = lambda a, i: np.abs(a[:47, :63].astype(int) - frame(i, 63, 47)).mean()  # noqa: E731
    assert err(got[0], 0) < err(got[0], 1) and err(got[5], 1) < err(got[5], 0)  # each still in turn


def test_segment_clip_reports_progress_and_class_shares(tmp_path, predictor):
    from seg.infer.video import ClipReader, segment_clip

    calls = []
    r = segment_clip(predictor, ClipReader(make_clip(tmp_path / "a.mp4", 4)), tmp_path / "o", frames=True,
                     progress=False, on_frame=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)] and r["frames"] == 4
    labels = labels_of(tmp_path / "o" / "a")
    assert r["shares"].shape == (4, VISTAS.num_classes)
    for share, lab in zip(r["shares"], labels):
        np.testing.assert_allclose(share, np.bincount(lab.ravel(), minlength=VISTAS.num_classes) / lab.size, atol=1e-6)


def test_interrupted_clip_leaves_nothing(tmp_path, predictor):
    from seg.infer.clip_cli import exit_on_term
    from seg.infer.video import ClipReader, segment_clip

    class StopsAtFrame2:  # what SIGTERM does mid-clip: run_clips' handler raises SystemExit in the loop
        classes = predictor.classes
        calls = 0

        def predict(self, rgb):
            self.calls += 1
            if self.calls == 2:
                exit_on_term(15, None)
            return predictor.predict(rgb)

    out = tmp_path / "o"
    with pytest.raises(SystemExit) as e:
        segment_clip(StopsAtFrame2(), ClipReader(make_clip(tmp_path / "a.mp4", 4)), out, frames=True, progress=False)
    assert e.value.code == 143 and list(out.iterdir()) == []


def test_sample_clip_help_and_errors(tmp_path, capsys):
    from seg.video import main

    with pytest.raises(SystemExit) as e:
        main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "--seconds" in out and "--fps" in out and "--out" in out
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "--out", str(tmp_path / "x.mp4")]) == 1
    assert capsys.readouterr().err == "error: no input frames\n" and not (tmp_path / "x.mp4").exists()


# --- nothing lost, memory bounded, no traceback, true timing (issue 23) ---

def test_clip_names_that_would_hide_or_replace_the_out_folder_are_refused(tmp_path, ckpt_path, cli):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    clips = [make_clip(tmp_path / "..mp4", 3), make_clip(tmp_path / "...mp4", 3)]  # stems "." and ".."
    r = cli(*clips, "--out", out, "--frames", "--checkpoint", ckpt_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert [line.split(": ")[1] for line in r.stderr.splitlines()] == ["..mp4", "...mp4"]
    assert [p.name for p in out.iterdir()] == ["precious.txt"] and sorted(p.name for p in tmp_path.iterdir()) == [
        "...mp4", "..mp4", "out"]


def test_two_clips_of_one_stem_do_not_overwrite_each_other(tmp_path, ckpt_path, cli):
    first, second = make_clip(tmp_path / "clip.mp4", 4), make_clip(tmp_path / "clip.mov", 2)
    out = tmp_path / "out"
    r = cli(first, second, "--out", out, "--frames", "--checkpoint", ckpt_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.splitlines()[-1] == "error: clip.mov: same output name clip_overlay.mp4 as clip.mp4; skipped"
    assert len(decode(out / "clip_overlay.mp4")[0]) == 4 and len(list((out / "clip").iterdir())) == 4


def test_frames_over_the_pixel_limit_are_refused_from_the_header(tmp_path, ckpt_path, cli, monkeypatch):
    from seg.infer import clipio

    clip = make_clip(tmp_path / "big.mov", 2)  # "big": 64x48 against a limit of 3071 pixels
    monkeypatch.setattr(clipio, "MAX_FRAME_PIXELS", 64 * 48 - 1, raising=False)
    with pytest.raises(clipio.VideoError, match=r"^big\.mov: frames are 64x48 .*over the .* limit$"):
        clipio.ClipReader(clip)  # the constructor decodes no frame
    r = cli(clip, "--out", tmp_path / "out", "--checkpoint", ckpt_path)
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1 and r.stderr.startswith("error: big.mov: frames are")
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("fps", [Fraction(1, 60000), 5000])
def test_clip_with_an_absurd_frame_rate_is_one_line(tmp_path, ckpt_path, cli, fps):
    clip = make_clip(tmp_path / "odd.mkv", 3, fps=fps)
    r = cli(clip, "--out", tmp_path / "out", "--checkpoint", ckpt_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1
    assert r.stderr.startswith("error: odd.mkv: frame rate") and list((tmp_path / "out").iterdir()) == []


def make_vfr_clip(path: Path, times_ms: list[int]) -> Path:
    """A variable-frame-rate clip: frame i shown at times_ms[i] (the pacing of a phone's screen recording)."""
    c = av.open(str(path), "w")
    s = c.add_stream("libx264", rate=10, options={"bf": "0"})
    s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    s.codec_context.time_base = Fraction(1, 1000)
    for i, t in enumerate(times_ms):
        f = av.VideoFrame.from_ndarray(frame(i, 64, 48), format="rgb24")
        f.pts, f.time_base = t, Fraction(1, 1000)
        c.mux(s.encode(f))
    c.mux(s.encode(None))
    c.close()
    return path


def test_variable_frame_rate_clip_keeps_its_timing(tmp_path, predictor):
    from seg.infer.video import ClipReader, segment_clip

    times = np.array([0, 100, 150, 1000, 1050, 2900, 3000])
    src = make_vfr_clip(tmp_path / "vfr.mkv", times.tolist())
    with av.open(str(src)) as c:
        assert [round(f.time * 1000) for f in c.decode(video=0)] == times.tolist()  # the source is VFR
    r = segment_clip(predictor, ClipReader(src), tmp_path / "o", progress=False)
    np.testing.assert_allclose(r["times"], times / 1000)
    with av.open(str(r["path"])) as c:
        got = [f.time for f in c.decode(video=0)]
        seconds = c.duration / 1e6
    np.testing.assert_allclose(got, times / 1000, atol=1e-3)  # each frame when the source showed it
    assert 3.0 < seconds < 3.6  # as long as the source (its last frame lasts one nominal frame)
