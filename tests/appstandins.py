"""Stand-in checkpoint, runs, dataset, sample frames and clips for the app tests, written into a tmp folder.

The app is pointed at them through SEG_CHECKPOINT / SEG_DATA / SEG_RUNS / SEG_SAMPLES, so the tests do not
depend on the bundled artifacts and exercise the same code paths a user's own folders take. `standins` and
`standin_env` are fixtures for the AppTest files to import; `run_app` runs app.py as the server would.
"""
from __future__ import annotations

import json
import runpy
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.runtime.scriptrunner import script_runner
from streamlit.testing.v1 import AppTest

from conftest import write_vistas
from seg.checkpoint import make_checkpoint, save_checkpoint
from seg.classes import VISTAS
from seg.model import create_model
from seg.paths import REPO_ROOT

ARCH = "lraspp_mobilenet_v3_large"  # the fastest registered model on CPU
KITTI_SIZE = (1242, 375)  # (W, H)
APP = str(REPO_ROOT / "app.py")
TIMEOUT = 120


def write_run(run_dir: Path, steps: int = 200, every: int = 20, eval_every: int = 100, t0: float = 1.7e9,
              calibrated: bool = False) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for s in range(every, steps + 1, every):
        lines.append({"step": s, "loss": 3.0 / (1 + s / 50) + 0.1 * np.sin(s), "lr": 1e-3 * (1 - s / (steps + 1)),
                      "img_per_s": 14.0, "time": t0 + s * 0.5})
        if s % eval_every == 0 and (s < steps or not calibrated):
            lines.append({"step": s, "val_miou": 0.1 + s / (steps * 4), "val_pixel_acc": 0.6 + s / (steps * 10)})
    if calibrated:  # the end of a --logit-adjust --bias-fit run
        lines += [{"step": steps, "logit_adjust": 0.5, "val_miou_before": 0.30},
                  {"step": steps, "bias_fit": 8, "heldout_miou_before": 0.5, "heldout_miou_after": 0.55,
                   "val_miou_before": 0.33},
                  {"step": steps, "val_miou": 0.36, "val_pixel_acc": 0.7}]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return run_dir


def kitti_frame(path: Path, seed: int = 0) -> Path:
    """A KITTI-shaped (1242x375) street-ish PNG: sky, buildings, road, with noise."""
    w, h = KITTI_SIZE
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 3] = (110, 150, 200)
    img[h // 3 : h // 2] = (90, 90, 90)
    img[h // 2 :] = (120, 100, 120)
    img = np.clip(img.astype(int) + rng.integers(-60, 60, img.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


def make_standins(root: Path, n_samples: int = 2) -> dict[str, str]:
    """Write everything under `root`; returns the environment that points the app at it."""
    torch.manual_seed(0)
    model = create_model(ARCH, VISTAS.num_classes).eval()
    for name, mod in model.named_modules():
        # Default init predicts one class everywhere; a strong random head gives varied label maps, so the
        # tests can tell a right answer from a wrong one.
        if isinstance(mod, torch.nn.Conv2d) and "classifier" in name and mod.out_channels == VISTAS.num_classes:
            torch.nn.init.normal_(mod.weight, std=1.0)
            torch.nn.init.zeros_(mod.bias)
    ckpt = make_checkpoint(model.eval(), ARCH, VISTAS, (96, 128), step=200, best_miou=0.25,
                           args={"data": "synth", "eval_limit": 32})  # what seg.train records (webapp.provenance)
    save_checkpoint(root / "runs" / "demo" / "model.pt", ckpt)
    write_run(root / "runs" / "demo", calibrated=True)
    write_run(root / "runs" / "sweep" / "lr-high", steps=120)
    write_vistas(root / "vistas", n_train=1, n_val=6, size=(128, 96))
    for i in range(n_samples):
        kitti_frame(root / "samples" / f"kitti_{i:06d}.png", seed=i)
    return {
        "SEG_CHECKPOINT": str(root / "runs" / "demo" / "model.pt"),
        "SEG_RUNS": str(root / "runs"),
        "SEG_DATA": str(root / "vistas"),
        "SEG_SAMPLES": str(root / "samples"),
    }


def no_legacy_pages_dir(monkeypatch) -> None:
    """Work around AppTest re-detecting the legacy pages/ folder before every run.

    AppTest resets `PagesManager.uses_pages_directory` before each run and the pages/ folder sets it True
    again, so Streamlit's legacy multipage path runs the page file without app.py (the shared sidebar
    vanishes from the second run on). A real server sets the flag False once st.navigation has run and keeps
    it. Here the legacy path simply runs app.py, as the server does; patching the function rather than the
    flag is immune to sessions in other threads resetting the flag.
    """
    monkeypatch.setattr(script_runner, "_mpa_v1", lambda main_script_path: runpy.run_path(main_script_path, run_name="__main__"))


def clip_bytes(path: Path, n: int = 6, w: int = 96, h: int = 64, rate: int | Fraction = 10) -> bytes:
    """An H.264 mp4 of `n` noise frames at `rate` frames/s written to `path`; returns its bytes."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for _ in range(n):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), format="rgb24")
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    return path.read_bytes()


class Halves:
    """A stand-in predictor: Road in the bottom half, Sky in the top."""

    classes = VISTAS

    def predict(self, rgb):
        lab = np.full(np.shape(rgb)[:2], 27, np.uint8)
        lab[lab.shape[0] // 2:] = 13
        return lab


def run_app(page: str | None = None) -> AppTest:
    """app.py run once (Home), then `page` ("training", "validation", "inference") when given; neither raised."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    if page:
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


@pytest.fixture(scope="module")
def standins(tmp_path_factory) -> dict:
    """The stand-ins of one test module (one sample frame), as the environment that points the app at them."""
    return make_standins(tmp_path_factory.mktemp("app"), n_samples=1)


@pytest.fixture
def standin_env(standins, monkeypatch) -> dict:
    """The app pointed at `standins` for one test (which may set other SEG_* values itself)."""
    no_legacy_pages_dir(monkeypatch)
    for k, v in standins.items():
        monkeypatch.setenv(k, v)
    return standins
