"""seg.infer.export and `python -m seg.export`: the ONNX graph has dynamic batch/height/width, opset >= 17 and the checkpoint's class table,
input size and normalisation in its metadata; it computes torch's logits; the CLI verifies before success."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from seg.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from seg.classes import VISTAS
from seg.infer.export import deployed_model, export_onnx, file_sha256
from seg.model import create_model
from conftest import run_main
from seg.infer.export_cli import main as export_main

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ckpt_path(tmp_path_factory):
    torch.manual_seed(0)
    arch = "lraspp_plus_mobilenet_v3_large"  # the bundled model's architecture: 1/4-resolution logits
    model = create_model(arch, VISTAS.num_classes).eval()
    path = tmp_path_factory.mktemp("export") / "model.pt"
    save_checkpoint(path, make_checkpoint(model, arch, VISTAS, (48, 64), step=3))
    return path


def _cli(*args):
    """`python -m seg.export ARGS` in a fresh process: the entry module itself, end to end."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "seg.export", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)


@pytest.fixture(scope="module")
def exported(ckpt_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "sub" / "model.onnx"
    r = _cli(ckpt_path, "--out", out, "--frames", "2")
    return out, r


@pytest.mark.slow
def test_cli_exports_and_reports_agreement(exported):
    out, r = exported
    assert r.returncode == 0, r.stderr
    (line,) = r.stdout.strip().splitlines()
    assert line.startswith(f"{out}: ") and "label agreement" in line
    agreement = float(line.split("label agreement ")[1].split(",")[0])
    assert agreement >= 0.999
    assert not list(out.parent.glob("*.tmp"))  # written atomically, nothing left behind


@pytest.mark.slow
def test_graph_has_dynamic_axes_opset_and_metadata(exported, ckpt_path):
    out, _ = exported
    model = onnx.load(str(out))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    (inp,) = model.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert inp.name == "image" and len(dims) == 4 and dims[1].dim_value == 3
    assert all(dims[i].dim_param and not dims[i].dim_value for i in (0, 2, 3))  # symbolic N, H, W
    meta = {p.key: p.value for p in model.metadata_props}
    ckpt = load_checkpoint(ckpt_path)
    assert json.loads(meta["seg.classes"]) == ckpt["classes"]
    assert json.loads(meta["seg.input_size"]) == [48, 64]
    assert json.loads(meta["seg.normalize"]) == {k: list(v) for k, v in ckpt["normalize"].items()}
    assert meta["seg.arch"] == "lraspp_plus_mobilenet_v3_large" and meta["seg.output_stride"] == "4"
    assert meta["seg.checkpoint_sha256"] == file_sha256(ckpt_path)


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(1, 3, 48, 64), (2, 3, 96, 160), (1, 3, 40, 120)])
def test_graph_computes_torch_logits_at_any_size(exported, ckpt_path, shape):
    out, _ = exported
    net = deployed_model(load_checkpoint(ckpt_path))
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = net(x, full_size=False).numpy()
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": x.numpy()})[0]
    assert got.shape == ref.shape == (shape[0], VISTAS.num_classes, shape[2] // 4, shape[3] // 4)
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-4)


def _main(capsys, *args) -> subprocess.CompletedProcess:
    """`python -m seg.export ARGS` in this process."""
    return run_main(export_main, capsys, *args)


def test_cli_help(capsys):
    r = _main(capsys, "--help")
    assert r.returncode == 0 and r.stderr == ""
    for flag in ("checkpoint", "--out", "--opset", "--exporter", "--frames", "--data", "--kitti"):
        assert flag in r.stdout, flag


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x80\x04 not a checkpoint")
    r = _main(capsys, junk, "--out", tmp_path / "m.onnx")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "junk.pt" in r.stderr
    assert not (tmp_path / "m.onnx").exists()
    r = _main(capsys, junk, "--opset", "16")
    assert r.returncode == 2 and "--opset must be at least 17" in r.stderr


@pytest.mark.slow
def test_dynamo_exporter_gives_the_same_graph_contract(ckpt_path, tmp_path):
    """The torch.export-based exporter (used where the TorchScript one is missing): same inputs, outputs, metadata."""
    import onnxscript  # noqa: F401 - a requirement; the dynamo exporter needs it, so a missing one fails here
    out = export_onnx(load_checkpoint(ckpt_path), tmp_path / "d.onnx", "0" * 64, exporter="dynamo")
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["seg.output_stride"] == "4" and json.loads(meta["seg.input_size"]) == [48, 64]
    x = torch.randn(2, 3, 40, 120, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        ref = deployed_model(load_checkpoint(ckpt_path))(x, full_size=False).numpy()
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-4)


def test_out_that_is_the_checkpoint_is_refused(ckpt_path, tmp_path, capsys):
    ckpt = tmp_path / "X.pt"
    ckpt.write_bytes(ckpt_path.read_bytes())
    (tmp_path / "alias.onnx").symlink_to(ckpt)
    for out in (ckpt, tmp_path / "." / "X.pt", tmp_path / "alias.onnx"):
        r = _main(capsys, ckpt, "--out", out)
        assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1
        assert r.stderr.startswith(f"error: {out}: ") and "checkpoint itself" in r.stderr
    assert ckpt.read_bytes() == ckpt_path.read_bytes()  # still the checkpoint


def test_missing_verification_folders_are_refused(ckpt_path, tmp_path, capsys):
    for flag in ("--data", "--kitti"):
        r = _main(capsys, ckpt_path, "--out", tmp_path / "m.onnx", flag, tmp_path / "nonexistent")
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert r.stderr == f"error: {tmp_path / 'nonexistent'}: no such folder ({flag})\n"
    assert not (tmp_path / "m.onnx").exists()
