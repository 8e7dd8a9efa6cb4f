"""The onnxruntime backend: same labels as torch, a cache keyed by the checkpoint's content that never serves a
stale or broken graph, and a fallback to torch with one warning line when no graph can be had."""
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime  # noqa: F401 - a requirement: without it these tests fail, they do not skip
import pytest
import torch
from onnx import numpy_helper
from PIL import Image

from seg.checkpoint import make_checkpoint, save_checkpoint
from seg.classes import VISTAS
from seg.infer import onnxcache, onnxrt
from seg.infer.export import ExportError, file_sha256
from seg.infer.predictor import Predictor
from seg.model import create_model

REPO = Path(__file__).resolve().parent.parent
ARCH = "lraspp_mobilenet_v3_large"
ROAD = VISTAS.names.index("construction--flat--road")


def _write_ckpt(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    model = create_model(ARCH, VISTAS.num_classes).eval()
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():  # non-trivial BN statistics, so the folded graph is really exercised
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    save_checkpoint(path, make_checkpoint(model, ARCH, VISTAS, (48, 64)))
    return path


@pytest.fixture(scope="module")
def ckpt_path(tmp_path_factory):
    return _write_ckpt(tmp_path_factory.mktemp("ort") / "model.pt", 0)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache folder of this test's own, so cache-state assertions see only what this test did."""
    monkeypatch.setenv("SEG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


def _imgs():
    rng = np.random.default_rng(0)
    sizes = [(64, 48), (64, 48), (207, 62), (31, 90), (1, 1)]
    return [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for w, h in sizes]


@pytest.mark.slow
def test_auto_on_cpu_is_onnxruntime_and_agrees_with_torch(ckpt_path):
    ort = Predictor(ckpt_path, device="cpu")
    ref = Predictor(ckpt_path, device="cpu", backend="torch", precision="fp32")
    assert ort.backend == "onnxruntime" and ort.precision == "fp32" and ort.meta["backend"] == "onnxruntime"
    assert ref.backend == "torch" and ort.meta["backend_note"] is None
    same = total = 0
    for im in _imgs():  # different heights and widths: the graph's dynamic axes
        a, b = ort.predict(im), ref.predict(im)
        assert a.shape == b.shape == (im.height, im.width) and a.dtype == np.uint8
        same, total = same + int((a == b).sum()), total + a.size
    assert same / total >= 0.999
    x = ref.model_input(_imgs()[2])
    torch.testing.assert_close(ort.forward(x), ref.forward(x), rtol=1e-4, atol=1e-4)
    full = ort.predict_full(_imgs()[3])
    np.testing.assert_array_equal(full.labels, ort.predict(_imgs()[3]))
    batch = ort.predict_batch(_imgs(), batch_size=2)
    assert all((a == ort.predict(im)).mean() >= 0.999 for a, im in zip(batch, _imgs()))


@pytest.mark.slow
def test_cache_is_keyed_by_content_and_reused(tmp_path, cache):
    path = _write_ckpt(tmp_path / "model.pt", 0)
    Predictor(path, device="cpu")
    first = sorted(cache.glob("*.onnx"))
    assert len(first) == 1 and first[0].stem == onnxrt.cache_key(file_sha256(path))
    mtime = first[0].stat().st_mtime_ns
    Predictor(path, device="cpu")
    assert sorted(cache.glob("*.onnx")) == first and first[0].stat().st_mtime_ns == mtime  # reused, not rebuilt
    # Same path, new weights (a retrained checkpoint): a new graph, and it predicts what torch does now.
    _write_ckpt(path, 1)
    ort = Predictor(path, device="cpu")
    assert len(list(cache.glob("*.onnx"))) == 2
    ref = Predictor(path, device="cpu", backend="torch", precision="fp32")
    im = _imgs()[0]
    assert (ort.predict(im) == ref.predict(im)).mean() >= 0.999


@pytest.mark.slow
def test_stale_or_broken_cache_file_is_rebuilt(tmp_path, cache):
    a, b = _write_ckpt(tmp_path / "a.pt", 0), _write_ckpt(tmp_path / "b.pt", 2)
    Predictor(a, device="cpu")
    Predictor(b, device="cpu")
    key_a = cache / f"{onnxrt.cache_key(file_sha256(a))}.onnx"
    key_b = cache / f"{onnxrt.cache_key(file_sha256(b))}.onnx"
    shutil.copy(key_b, key_a)  # a's name, b's graph: must not be trusted
    pred = Predictor(a, device="cpu")
    assert pred.backend == "onnxruntime"
    assert onnxrt.OrtNet(key_a).metadata["seg.checkpoint_sha256"] == file_sha256(a)
    ref = Predictor(a, device="cpu", backend="torch", precision="fp32")
    assert (pred.predict(_imgs()[0]) == ref.predict(_imgs()[0])).mean() >= 0.999
    key_a.write_bytes(b"not an onnx file")  # truncated / corrupted
    pred = Predictor(a, device="cpu")
    assert pred.backend == "onnxruntime" and (pred.predict(_imgs()[0]) == ref.predict(_imgs()[0])).mean() >= 0.999


def _warnings(caplog):
    return [r for r in caplog.records if r.name == "seg" and r.levelno == logging.WARNING]


def test_export_failure_falls_back_to_torch_with_one_warning(ckpt_path, cache, monkeypatch, caplog):
    def broken(ckpt, out, sha, opset=None):
        raise ExportError(f"{ckpt_path}: ONNX export failed (RuntimeError: unsupported op)")

    monkeypatch.setattr(onnxrt, "export_onnx", broken)
    with caplog.at_level(logging.WARNING, logger="seg"):
        pred = Predictor(ckpt_path, device="cpu")
    assert pred.backend == "torch" and pred.meta["backend"] == "torch"
    (w,) = _warnings(caplog)
    assert "\n" not in w.getMessage() and "unsupported op" in w.getMessage() and "using torch" in w.getMessage()
    assert "unsupported op" in pred.meta["backend_note"]
    assert pred.predict(_imgs()[0]).shape == (48, 64)
    assert not list(cache.glob("*.onnx"))


def test_missing_onnxruntime_falls_back(ckpt_path, cache, monkeypatch, caplog):
    monkeypatch.setattr(onnxrt, "available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="seg"):
        pred = Predictor(ckpt_path, device="cpu", backend="onnxruntime")
    assert pred.backend == "torch" and len(_warnings(caplog)) == 1
    assert "not installed" in _warnings(caplog)[0].getMessage()


def test_graph_that_disagrees_with_torch_is_refused(ckpt_path, cache, monkeypatch, caplog):
    real = onnxrt.OrtNet.__call__
    monkeypatch.setattr(onnxrt.OrtNet, "__call__", lambda self, x: -real(self, x))  # argmax -> argmin
    with caplog.at_level(logging.WARNING, logger="seg"):
        pred = Predictor(ckpt_path, device="cpu")
    assert pred.backend == "torch" and "disagrees with torch" in _warnings(caplog)[0].getMessage()
    assert not list(cache.glob("*.onnx"))  # not kept for the next process


def test_backend_choices_are_checked(ckpt_path):
    with pytest.raises(ValueError, match="backend must be one of"):
        Predictor(ckpt_path, backend="tensorrt")
    with pytest.raises(ValueError, match="runs fp32 on the CPU"):
        Predictor(ckpt_path, device="cpu", backend="onnxruntime", precision="bf16")
    bf = Predictor(ckpt_path, device="cpu", precision="bf16")  # explicit bf16: auto picks torch
    assert bf.backend == "torch" and bf.precision == "bf16"


def _cli(module, *args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)


@pytest.mark.slow
def test_evaluate_and_predict_backend_flags(tiny_vistas, ckpt_path, tmp_path):
    runs = {}
    for backend in ("torch", "onnxruntime"):
        r = _cli("seg.evaluate", "--data", tiny_vistas, "--checkpoint", ckpt_path, "--json",
                 "--device", "cpu", "--backend", backend)
        assert r.returncode == 0, r.stderr
        runs[backend] = json.loads(r.stdout)
    assert runs["torch"]["pixel_acc"] == pytest.approx(runs["onnxruntime"]["pixel_acc"], abs=1e-3)
    src = tiny_vistas / "validation" / "images"
    outs = {}
    for backend in ("torch", "onnxruntime"):
        r = _cli("seg.predict", src, "--out", tmp_path / backend, "--checkpoint", ckpt_path, "--backend", backend)
        assert r.returncode == 0 and r.stderr == "", r.stderr
        outs[backend] = [np.array(Image.open(p)) for p in sorted((tmp_path / backend).glob("*.png"))]
    assert len(outs["torch"]) == 4
    assert np.mean([(a == b).mean() for a, b in zip(outs["torch"], outs["onnxruntime"])]) >= 0.999


# --- the cache never serves a graph that disagrees with its checkpoint (issue 23) ---

def _entry(cache: Path, ckpt: Path) -> Path:
    return cache / f"{onnxrt.cache_key(file_sha256(ckpt))}.onnx"


def _rewrite(graph_path: Path, road_bias: float = 0.0, marker: bool = False) -> None:
    """Edit a cached graph in place, its metadata kept: raise Road's bias in every class-bias initializer
    (every pixel becomes Road), and/or add a marker that shows whether this very file was served."""
    model = onnx.load(str(graph_path))
    edited = 0
    for init in model.graph.initializer:
        bias = numpy_helper.to_array(init)
        if road_bias and bias.shape == (VISTAS.num_classes,):
            bias = bias.copy()
            bias[ROAD] += road_bias
            init.CopyFrom(numpy_helper.from_array(bias, init.name))
            edited += 1
    assert edited or not road_bias
    if marker:
        model.metadata_props.add(key="planted", value="1")
    onnx.save(model, str(graph_path))


def _agrees_with_torch(pred: Predictor, ckpt: Path) -> bool:
    ref = Predictor(ckpt, device="cpu", backend="torch", precision="fp32")
    return all((pred.predict(im) == ref.predict(im)).mean() >= 0.999 for im in _imgs()[:3])


def _planted(graph_path: Path) -> bool:
    return "planted" in onnxrt.OrtNet(graph_path).metadata


@pytest.mark.slow
def test_edited_cached_graph_is_not_served(tmp_path, cache):
    path = _write_ckpt(tmp_path / "model.pt", 0)
    Predictor(path, device="cpu")
    _rewrite(_entry(cache, path), road_bias=1e4)  # metadata kept, so it still names this checkpoint
    pred = Predictor(path, device="cpu")
    assert pred.backend == "onnxruntime" and _agrees_with_torch(pred, path)
    assert not (pred.predict(_imgs()[0]) == ROAD).all()


@pytest.mark.slow
def test_edited_graph_with_a_matching_record_fails_the_torch_check(tmp_path, cache):
    path = _write_ckpt(tmp_path / "model.pt", 0)
    Predictor(path, device="cpu")
    graph = _entry(cache, path)
    _rewrite(graph, road_bias=1e4)
    onnxcache.write_record(cache, graph.stem, file_sha256(path), graph.read_bytes())  # a consistent record
    pred = Predictor(path, device="cpu")
    assert pred.backend == "onnxruntime" and _agrees_with_torch(pred, path)


@pytest.mark.slow
def test_graph_planted_by_another_user_is_not_used(tmp_path, cache):
    path = _write_ckpt(tmp_path / "model.pt", 0)
    Predictor(path, device="cpu")
    graph = _entry(cache, path)
    _rewrite(graph, marker=True)  # a graph that agrees with torch, but is not ours
    onnxcache.write_record(cache, graph.stem, file_sha256(path), graph.read_bytes())
    for f in (graph, graph.with_suffix(".json")):
        os.chown(f, 65534, 65534) if os.getuid() == 0 else f.chmod(0o666)  # nobody's, or writable by all
    Predictor(path, device="cpu")
    assert not _planted(graph) and graph.stat().st_uid == os.getuid()  # rebuilt in its place


@pytest.mark.slow
def test_shared_cache_folder_that_others_may_write_is_not_used(tmp_path, cache, monkeypatch, caplog):
    path = _write_ckpt(tmp_path / "model.pt", 0)
    Predictor(path, device="cpu")
    graph = _entry(cache, path)
    _rewrite(graph, marker=True)
    onnxcache.write_record(cache, graph.stem, file_sha256(path), graph.read_bytes())
    cache.chmod(0o777)  # a shared SEG_CACHE_DIR: anyone could have put these files there
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with caplog.at_level(logging.WARNING, logger="seg"):
        pred = Predictor(path, device="cpu")
    (w,) = _warnings(caplog)
    assert str(cache) in w.getMessage() and "\n" not in w.getMessage()
    private = onnxcache.private_dir()
    assert pred.backend == "onnxruntime" and private.is_relative_to(tmp_path / "tmp")
    assert (private / graph.name).is_file() and not _planted(private / graph.name) and _planted(graph)
    assert not (private.stat().st_mode & 0o077) and _agrees_with_torch(pred, path)


@pytest.mark.slow
def test_checkpoint_replaced_while_loading_never_mixes_weights(tmp_path, cache, monkeypatch):
    path, b = _write_ckpt(tmp_path / "model.pt", 0), _write_ckpt(tmp_path / "b.pt", 2)
    real, swapped = torch.load, []

    def load_then_replace(*args, **kwargs):  # `seg.train` rewriting model.pt just after it was loaded
        out = real(*args, **kwargs)
        if not swapped:
            shutil.copy(b, path)
            swapped.append(1)
        return out

    monkeypatch.setattr(torch, "load", load_then_replace)
    Predictor(path, device="cpu")
    monkeypatch.setattr(torch, "load", real)
    assert file_sha256(path) == file_sha256(b) and not _entry(cache, b).exists()  # A's graph not under B's hash
    pred = Predictor(path, device="cpu")
    assert pred.backend == "onnxruntime" and _agrees_with_torch(pred, path)
