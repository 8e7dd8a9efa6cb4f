"""seg.infer.predictor and `python -m seg.predict`: geometry (output = input size, wide frames keep their
aspect), folding is exact, the CLI reports bad files in one line each and keeps going, an unsafe checkpoint
never runs, and the Predictor loads no video library."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from seg.checkpoint import CheckpointError, make_checkpoint, model_from_checkpoint, save_checkpoint
from seg.classes import VISTAS
from seg.infer.deploy import fold_conv_bn, model_size
from seg.infer.predictor import Prediction, Predictor
from conftest import run_main
from seg.infer.predict_cli import main as predict_main

REPO = Path(__file__).resolve().parent.parent
ARCHS = ("lraspp_mobilenet_v3_large", "lraspp_plus_mobilenet_v3_large")  # 1/8- and 1/4-resolution logits


def _randomize_bn(model: nn.Module) -> None:
    """Non-trivial BN statistics, so folding is actually tested (fresh BN is the identity)."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)


@pytest.fixture(scope="module", params=ARCHS)
def ckpt_path(tmp_path_factory, request):
    from seg.model import create_model

    torch.manual_seed(0)
    model = create_model(request.param, VISTAS.num_classes).eval()
    _randomize_bn(model)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, make_checkpoint(model, request.param, VISTAS, (48, 64), step=7, best_miou=0.25))
    return path


@pytest.fixture(scope="module", params=("torch", "onnxruntime"))
def predictor(ckpt_path, request):
    pred = Predictor(ckpt_path, device="cpu", precision="fp32", backend=request.param)
    assert pred.backend == request.param
    return pred


def _img(w, h, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8))


def test_model_size_keeps_aspect_and_budget():
    assert model_size(384, 512, (384, 512)) == (384, 512)
    assert model_size(768, 1024, (384, 512)) == (384, 512)
    assert model_size(375, 1242, (384, 512)) == (384, 1271)  # KITTI: height matched, width as torchvision's Resize
    h, w = model_size(100, 100_000, (384, 512))  # panorama: within 4x the trained area
    assert h * w <= 4 * 384 * 512 and h % 16 == 0 and w % 16 == 0 and w / h > 500
    assert model_size(1, 1, (48, 64)) == (48, 48)


def test_fold_conv_bn_matches_unfolded(ckpt_path):
    from seg.checkpoint import load_checkpoint

    ref = model_from_checkpoint(load_checkpoint(ckpt_path))
    folded = model_from_checkpoint(load_checkpoint(ckpt_path))
    n = fold_conv_bn(folded)
    assert n > 30 and not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, 3, 48, 64)
    with torch.inference_mode():
        a, b = ref(x), folded(x.contiguous(memory_format=torch.channels_last))
    assert a.abs().max() > 1e-3  # the model computes something
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size", [(64, 48), (63, 47), (207, 62), (1, 1), (31, 90)])
def test_predict_output_is_input_size(predictor, size):
    labels = predictor.predict(_img(*size))
    assert labels.dtype == np.uint8 and labels.shape == (size[1], size[0])
    assert labels.max() < VISTAS.num_classes


def test_predict_matches_manual_pipeline_and_full(predictor, ckpt_path):
    from seg.checkpoint import load_checkpoint

    img = _img(64, 48, seed=1)
    ref = model_from_checkpoint(load_checkpoint(ckpt_path))
    x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float() / 255
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    with torch.no_grad():
        logits = ref((x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))
    expected = logits.argmax(1)[0].numpy()
    labels = predictor.predict(img)
    assert (labels == expected).mean() > 0.999
    full = predictor.predict_full(np.asarray(img))
    assert isinstance(full, Prediction) and full.ms > 0
    np.testing.assert_array_equal(full.labels, labels)
    # Confidence: the max softmax at the logits' own resolution, upsampled (no full-size logits).
    with torch.no_grad():
        low = ref((x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1), full_size=False)
    soft = torch.softmax(low, 1).amax(1, keepdim=True)
    soft = torch.nn.functional.interpolate(soft, (48, 64), mode="bilinear", align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(full.confidence, soft, atol=1e-4)
    assert full.confidence.dtype == np.float32


def test_predict_batch_equals_predict(predictor):
    imgs = [_img(64, 48, seed=s) for s in range(3)] + [_img(207, 62, seed=4), _img(31, 90, seed=5)]
    out = predictor.predict_batch(imgs, batch_size=2)  # two model sizes, one of them split over batches
    assert len(out) == len(imgs)
    for got, im in zip(out, imgs):
        ref = predictor.predict(im)
        assert got.shape == ref.shape == (im.height, im.width) and (got == ref).mean() >= 0.999


def test_meta_names_device_backend_precision(predictor, request):
    asked = request.node.callspec.params["predictor"]  # the backend the fixture asked for, and got
    m = predictor.meta
    assert m["device"] == "cpu" and m["backend"] == asked and m["backend_note"] is None
    assert m["precision"] == "fp32"


def test_meta_and_classes(predictor, ckpt_path):
    m = predictor.meta
    assert m["arch"] == torch.load(ckpt_path, weights_only=True)["model_args"]["arch"]
    assert m["steps"] == 7 and m["input_size"] == (48, 64)
    assert m["best_miou"] == 0.25 and m["val_miou"] is None and m["path"] == str(ckpt_path)
    assert predictor.classes == VISTAS


def test_bf16_agrees_with_fp32(ckpt_path, predictor):
    bf = Predictor(ckpt_path, device="cpu", precision="bf16")
    img = _img(64, 48, seed=2)
    assert (bf.predict(img) == predictor.predict(img)).mean() > 0.9


def _cli(*args, cwd=REPO):
    """`python -m seg.predict ARGS` in a fresh process: the entry module itself, end to end."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "seg.predict", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


def _main(capsys, *args) -> subprocess.CompletedProcess:
    """`python -m seg.predict ARGS` in this process."""
    return run_main(predict_main, capsys, *args)


@pytest.mark.slow
def test_cli_bad_file_in_batch(tmp_path, ckpt_path):
    src = tmp_path / "in"
    src.mkdir()
    _img(70, 50).save(src / "good.jpg")
    _img(90, 30, seed=3).save(src / "wide.png")
    (src / "bad.png").write_text("not an image")
    (src / "empty.jpg").write_bytes(b"")
    out = tmp_path / "out"
    r = _cli(src, tmp_path / "missing.png", "--out", out, "--checkpoint", ckpt_path, "--overlay")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert sorted(lines) == sorted([
        "error: bad.png: not an image file (or an unsupported format)",
        "error: empty.jpg: empty file",
        "error: missing.png: file not found",
    ])
    for stem, size in (("good", (70, 50)), ("wide", (90, 30))):
        im = Image.open(out / f"{stem}.png")
        assert im.mode == "P" and im.size == size
        assert im.getpalette()[: 3 * len(VISTAS)] == VISTAS.flat_palette()[: 3 * len(VISTAS)]
        assert Image.open(out / f"{stem}_overlay.jpg").size == size
    assert not (out / "bad.png").exists()


def test_cli_bad_and_malicious_checkpoint(tmp_path, capsys):
    _img(8, 8).save(tmp_path / "a.png")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x80\x04 definitely not a checkpoint")
    r = _main(capsys, tmp_path / "a.png", "--out", tmp_path / "o", "--checkpoint", junk)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "junk.pt" in r.stderr

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    torch.save({"model": Payload()}, evil, pickle_protocol=2)
    with pytest.raises(CheckpointError):
        Predictor(evil)
    r = _main(capsys, tmp_path / "a.png", "--out", tmp_path / "o", "--checkpoint", evil)
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not marker.exists()


def test_cli_help_lists_image_runtime_and_video_flags(capsys):
    r = _main(capsys, "--help")
    assert r.returncode == 0 and r.stderr == ""
    for flag in ("--out", "--checkpoint", "--overlay", "--device", "--backend", "--precision", "--threads",
                 "--frames", "--every", "--max-frames", "--fps"):
        assert flag in r.stdout, flag


@pytest.mark.slow
def test_predictor_import_does_not_load_pyav():
    """Importing the Predictor (the app, seg.evaluate, seg.bench) must not pay for PyAV; only clips need it."""
    code = "import sys, seg.infer.predictor; print(sorted(m for m in sys.modules if m.split('.')[0] == 'av'))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                       env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


@pytest.mark.parametrize("low_hw,size", [((3, 4), (48, 64)), ((24, 79), (384, 1264)), ((6, 6), (6, 6)), ((4, 5), (17, 3))])
def test_upsample_argmax_equals_interpolate_then_argmax(low_hw, size):
    from seg.infer.upsample import upsample_argmax

    torch.manual_seed(0)
    low = torch.randn(1, 66, *low_hw).contiguous(memory_format=torch.channels_last)
    ref = torch.nn.functional.interpolate(low, size, mode="bilinear", align_corners=False).argmax(1)[0]
    got = upsample_argmax(low, size)
    assert got.shape == ref.shape and got.dtype == np.uint8 and (got == ref.numpy()).mean() > 0.999  # float ties only


def test_failed_overlay_leaves_no_label_map(tmp_path, ckpt_path, capsys):
    """JPEG stops at 65500 px a side: the overlay of a 65535x1 image fails, and its label PNG must go with it."""
    src = tmp_path / "in"
    src.mkdir()
    _img(65535, 1).save(src / "strip.png")
    _img(70, 50).save(src / "good.png")
    out = tmp_path / "out"
    r = _main(capsys, src, "--out", out, "--checkpoint", ckpt_path, "--overlay", "--backend", "torch")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: strip.png: ")
    assert sorted(p.name for p in out.iterdir()) == ["good.png", "good_overlay.jpg"]  # no temporaries either


def test_threads_below_one_are_refused(ckpt_path):
    with pytest.raises(ValueError, match="threads must be at least 1"):
        Predictor(ckpt_path, device="cpu", threads=0)
