"""seg.bench measurement functions on a tiny checkpoint: sane relationships only, no timed assertions."""
import time

import numpy as np
import pytest
import torch
from PIL import Image

from seg.bench import report
from seg.bench.pipeline import NaivePipeline, cpu_backends, model_flops, pipeline_figures, timed_rounds
from seg.bench.report import add_ratios, format_table, main
from seg.data.samples import sample_frames as frames
from seg.device import cpu_name
from seg.checkpoint import load_checkpoint, make_checkpoint, model_from_checkpoint, save_checkpoint
from seg.classes import VISTAS
from seg.model import create_model
from seg.infer.predictor import Predictor


@pytest.fixture(scope="module")
def ckpt_path(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("lraspp_mobilenet_v3_large", VISTAS.num_classes).eval()
    path = tmp_path_factory.mktemp("bench") / "model.pt"
    save_checkpoint(path, make_checkpoint(model, "lraspp_mobilenet_v3_large", VISTAS, (48, 64)))
    return path


def _imgs(size, n):
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(n)]


def test_naive_pipeline_outputs_and_self_agreement(ckpt_path):
    naive = NaivePipeline(load_checkpoint(ckpt_path))
    img = _imgs((70, 30), 1)[0]
    lab, ov = naive(img)
    assert lab.mode == "P" and lab.size == img.size and ov.size == img.size
    np.testing.assert_array_equal(naive.labels(img), np.array(lab))  # deterministic, identical pipelines


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_pipeline_figures_relationships(ckpt_path, backend):
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
    pred = Predictor(ckpt_path, device="cpu", precision="fp32", backend=backend)
    naive = NaivePipeline(load_checkpoint(ckpt_path))
    r = pipeline_figures(pred, naive, _imgs((64, 48), 2), runs=1, gemm=True)
    assert r["agreement"] > 0.99  # same weights, same geometry at the trained size, fp32
    assert all(r[k] > 0 for k in ("forward_ms", "model_forward_ms", "predict_ms", "predict_full_ms", "naive_ms", "gemm_gflop_s",
                                  "input_ms", "labels_ms", "picture_ms"))
    assert "gemm_ms" not in r
    lean = pipeline_figures(pred, naive, _imgs((64, 48), 1), runs=1, reference=False)
    assert "naive_ms" not in lean and "model_forward_ms" not in lean and lean["agreement"] > 0.99
    assert r["model_hw"] == [48, 64]
    wide = pipeline_figures(pred, naive, _imgs((124, 37), 1), runs=1)
    assert wide["model_hw"][0] == 48 and wide["model_hw"][1] > 2 * 64  # aspect kept, not squashed
    assert 0.0 <= wide["agreement"] <= 1.0


def test_flops_timed_and_frames(ckpt_path, tmp_path):
    model = model_from_checkpoint(load_checkpoint(ckpt_path))
    f1, f2 = model_flops(model, (48, 64)), model_flops(model, (96, 128))
    assert f1 > 0 and 3.5 < f2 / f1 < 4.5  # conv FLOPs scale with pixel count
    order = []
    got = timed_rounds({"a": lambda: order.append("a"), "b": lambda: (order.append("b"), time.sleep(0.01))}, runs=3,
                       warmup=1, pause_s=0)
    assert order == ["a", "b"] * 4  # interleaved: one call of each per round, warm-up round included
    assert set(got) == {"a", "b"} and got["b"] >= 10 and got["a"] < got["b"]  # each call timed as its own
    Image.new("RGB", (20, 10)).save(tmp_path / "a.png")
    got = frames(tmp_path, (40, 12), 1, 0)
    assert len(got) == 1 and got[0].size == (40, 12)


def test_cpu_backends_and_table(ckpt_path):
    pytest.importorskip("onnxruntime")
    default, preds = cpu_backends(ckpt_path, "auto")
    assert default.backend == "onnxruntime" and set(preds) == {"torch", "onnxruntime"}
    assert preds["onnxruntime"] is default and preds["torch"].backend == "torch"
    assert cpu_backends(ckpt_path, "torch")[0].backend == "torch"
    res = {"arch": "a", "cpu": "Some CPU 9000", "threads": 2, "torch": "2", "onnxruntime": "1", "backend": "onnxruntime",
           "precision": "fp32", "input_size": [48, 64], "forward_ms": 1.0,
           "backends": {"torch": {"precision": "fp32", "forward_ms": 2.0}, "onnxruntime": {"precision": "fp32", "forward_ms": 1.0}}}
    table = format_table(res)
    assert "Some CPU 9000, 2 threads" in table and "default backend: onnxruntime (fp32)" in table
    assert "torch (fp32) forward_ms" in table and "onnxruntime (fp32) forward_ms" in table


def test_cpu_name_reads_the_model_name_line():
    info = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6230 @ 2.10GHz\n\n" \
           "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Gold 6230 @ 2.10GHz\n"
    assert cpu_name(info) == "Intel(R) Xeon(R) Gold 6230 @ 2.10GHz"
    assert cpu_name("processor : 0\nModel Name : Ampere Altra: Q80-30\n") == "Ampere Altra: Q80-30"
    without = cpu_name("processor\t: 0\nvendor_id\t: ARM\n")  # no model line: the platform's own answer
    assert without and "processor" not in without and "ARM" not in without


def test_ratios_divide_the_figures_they_name():
    res = {"naive_ms": 30.0, "predict_ms": 10.0, "forward_ms": 5.0, "predict_full_ms": 12.0, "naive_ms_kitti": 8.0,
           "predict_ms_kitti": 4.0, "forward_ms_kitti": 2.0, "predict_full_ms_kitti": 6.0, "flop_limit_ms": 2.5,
           "train_img_s": 10.0, "loader_img_s": 40.0}
    add_ratios(res)
    assert (res["naive_over_predict"], res["predict_over_forward"], res["predict_full_over_predict"]) == (3.0, 2.0, 1.2)
    assert (res["naive_over_predict_kitti"], res["predict_over_forward_kitti"]) == (2.0, 2.0)
    assert res["predict_full_over_predict_kitti"] == 1.5 and res["predict_over_flop_limit"] == 4.0
    assert res["loader_over_train"] == 4.0
    res = {k: v for k, v in res.items() if "_over_" not in k and k != "loader_img_s"}
    add_ratios(res)
    assert "loader_over_train" not in res  # the loader was not measured: no ratio made up


def test_device_cuda_without_cuda_is_one_error_line(ckpt_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["--checkpoint", str(ckpt_path), "--device", "cuda", "--quick"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: device cuda: CUDA is not available here (use --device cpu or auto)"]


@pytest.mark.parametrize("where", ["missing-folder/out.json", "a-file/out.json", "."])
def test_json_to_an_unwritable_path_is_refused_before_any_work(ckpt_path, tmp_path, monkeypatch, capsys, where):
    (tmp_path / "a-file").write_text("not a folder")
    target = tmp_path / where

    def no_work(*args, **kwargs):
        raise AssertionError("measured before checking where the figures go")

    monkeypatch.setattr(report, "run", no_work)
    assert main(["--checkpoint", str(ckpt_path), "--json", str(target), "--quick"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {target}: ") and "Traceback" not in err[0], err
    assert not (tmp_path / "missing-folder").exists()


def test_json_to_a_new_file_leaves_nothing_when_the_run_fails(ckpt_path, tmp_path, monkeypatch, capsys):
    target = tmp_path / "out.json"

    def fails(*args, **kwargs):
        raise ValueError("device cuda: CUDA is not available here")

    monkeypatch.setattr(report, "run", fails)
    assert main(["--checkpoint", str(ckpt_path), "--json", str(target)]) == 1
    assert not target.exists()  # the early check made no empty file
