"""ONNX export of the deployed network (the CLI, `python -m seg.export`, is `seg.infer.export_cli`).

The graph is exactly `Predictor.forward` on the torch backend: the checkpoint's model with conv-BN folded,
from the normalised image to the head's own low-resolution logits (the model's final bilinear upsample of
every class channel is left out; `seg.infer.upsample.upsample_argmax` turns those logits into exact full-size labels).

    input  "image":  float32 (N, 3, H, W), RGB, (x / 255 - mean) / std   -- N, H and W dynamic
    output "logits": float32 (N, C, H / s, W / s), s = the head's output stride (4, 8 or 16 by architecture)

The ONNX metadata carries what a consumer needs to use it without the checkpoint: `seg.classes` (the class
table as JSON: names, readable names, colours, ignore index), `seg.input_size` ([H, W] trained), `seg.normalize`
({mean, std}), `seg.arch`, `seg.output_stride`, and `seg.checkpoint_sha256` (the file it was made from).
Before it reports success the CLI runs the graph with onnxruntime on a few validation frames and compares
the labels with torch's.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from seg.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from seg.cli import one_line
from seg.infer.deploy import fold_conv_bn

OPSET = 18
# Bumped whenever the exported graph or its metadata change, so cached graphs made by older code are rebuilt.
GRAPH_VERSION = 1
EXPORTERS = ("auto", "torchscript", "dynamo")  # torch.onnx's two exporters; `_export_graph`


class ExportError(RuntimeError):
    """The graph could not be made or does not match torch; the message is one line."""


class DeployedNet(nn.Module):
    """The deployed network as one module: folded model, normalised (N, 3, H, W) -> low-res (N, C, h, w) logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image, full_size=False)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_checkpoint(path: str | Path) -> tuple[dict, str]:
    """(the checkpoint at `path`, the hex SHA-256 of the very bytes it was loaded from).

    The file is read once: a file replaced meanwhile (`seg.train` rewriting model.pt) can never pair one
    file's weights with the other's hash. Raises CheckpointError (one line) as `load_checkpoint` does.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block the open
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot open ({e.strerror or e})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise CheckpointError(f"{path}: no such checkpoint file")
        try:
            data = f.read()
        except OSError as e:
            raise CheckpointError(f"{path}: cannot read ({e.strerror or e})") from None
    return load_checkpoint(path, data=data), hashlib.sha256(data).hexdigest()


def deployed_model(ckpt: dict) -> nn.Module:
    """The checkpoint's model in eval mode with conv-BN folded (what both backends run), fp32, on the CPU."""
    model = model_from_checkpoint(ckpt)
    fold_conv_bn(model)
    return model


def output_stride(model: nn.Module, input_size: tuple[int, int]) -> int:
    """Input height / low-res logit height at the trained size (4, 8 or 16)."""
    with torch.inference_mode():
        low = model(torch.zeros(1, 3, *input_size), full_size=False)
    return int(round(input_size[0] / low.shape[-2]))


def metadata(ckpt: dict, sha256: str, stride: int) -> dict[str, str]:
    """The ONNX metadata_props of a checkpoint's graph (module doc)."""
    return {
        "seg.classes": json.dumps(ckpt["classes"]),
        "seg.input_size": json.dumps([int(v) for v in ckpt["input_size"]]),
        "seg.normalize": json.dumps({k: [float(v) for v in ckpt["normalize"][k]] for k in ("mean", "std")}),
        "seg.arch": str(ckpt["model_args"]["arch"]),
        "seg.output_stride": str(stride),
        "seg.checkpoint_sha256": sha256,
        "seg.graph_version": str(GRAPH_VERSION),
        "seg.input": "image: float32 (N, 3, H, W) RGB, (x / 255 - mean) / std",
        "seg.output": "logits: float32 (N, C, H / output_stride, W / output_stride)",
    }


def _export_graph(net: nn.Module, example: torch.Tensor, path: str, opset: int, exporter: str) -> None:
    """Write the ONNX graph of `net` to `path` with dynamic N, H, W, by one of torch.onnx's two exporters.

    "torchscript" (torch.onnx.export(dynamo=False), deprecated in torch but present in 2.14) exports this
    network in seconds; "dynamo" (torch.export-based) spends over a minute in symbolic-shape reasoning for
    the dynamic height and width. Both give the same logits (within ~1e-5 of torch) and run equally fast in
    onnxruntime. "auto": torchscript, and dynamo where torchscript is missing or fails.
    """
    if exporter in ("auto", "torchscript"):
        try:
            torch.onnx.export(net, (example,), path, dynamo=False, opset_version=opset, input_names=["image"],
                              output_names=["logits"], dynamic_axes={"image": {0: "n", 2: "height", 3: "width"},
                                                                     "logits": {0: "n", 2: "h", 3: "w"}})
            return
        except Exception:  # noqa: BLE001 - "auto" tries the other exporter; an explicit choice reports it
            if exporter == "torchscript":
                raise
    dyn = torch.export.Dim.DYNAMIC
    program = torch.onnx.export(net, (example,), dynamo=True, opset_version=opset, verbose=False,
                                input_names=["image"], output_names=["logits"],
                                dynamic_shapes={"image": {0: dyn, 2: dyn, 3: dyn}})
    program.save(path, external_data=False)


def export_onnx(ckpt: dict, out: str | Path, sha256: str, opset: int = OPSET, exporter: str = "auto") -> Path:
    """Write the deployed network of `ckpt` to `out` (atomically: temp file, then rename).

    Args: ckpt from `load_checkpoint`; sha256 of the checkpoint file (stored in the metadata); exporter, one
    of EXPORTERS (`_export_graph`). Raises ExportError (one line) when torch.onnx cannot export the model.
    """
    import onnx  # here, not at the top: only a new export needs it, not every Predictor (seconds of import)

    out = Path(out)
    model = deployed_model(ckpt)
    h, w = (int(v) for v in ckpt["input_size"])
    stride = output_stride(model, (h, w))
    example = torch.randn(2, 3, h, w)  # batch 2: a batch of 1 would be specialised to a constant
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the exporters' deprecation and tracer chatter; failures raise
                _export_graph(DeployedNet(model).eval(), example, tmp, opset, exporter)
        except Exception as e:  # noqa: BLE001 - any exporter failure becomes one line
            name = ckpt.get("_path", "checkpoint")
            raise ExportError(f"{name}: ONNX export failed ({one_line(e, 160, kind=True)})") from None
        graph = onnx.load(tmp)
        for key, value in metadata(ckpt, sha256, stride).items():
            graph.metadata_props.add(key=key, value=value)
        onnx.save(graph, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def agreement(onnx_logits: np.ndarray, torch_logits: np.ndarray) -> tuple[float, float]:
    """(share of low-res cells with the same argmax class, max abs logit difference) of (N, C, h, w) arrays."""
    same = (onnx_logits.argmax(1) == torch_logits.argmax(1)).mean()
    return float(same), float(np.abs(onnx_logits - torch_logits).max())
