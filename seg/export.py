"""ONNX export of the deployed network: `python -m seg.export CHECKPOINT [--out model.onnx]`.

The graph is exactly `Predictor.forward` on the torch backend: the checkpoint's model with conv-BN folded,
from the normalised image to the head's own low-resolution logits (the model's final bilinear upsample of
every class channel is left out; `seg.predict.upsample_argmax` turns those logits into exact full-size labels).

    input  "image":  float32 (N, 3, H, W), RGB, (x / 255 - mean) / std   -- N, H and W dynamic
    output "logits": float32 (N, C, H / s, W / s), s = the head's output stride (4, 8 or 16 by architecture)

The ONNX metadata carries what a consumer needs to use it without the checkpoint: `seg.classes` (the class
table as JSON: names, readable names, colours, ignore index), `seg.input_size` ([H, W] trained), `seg.normalize`
({mean, std}), `seg.arch`, `seg.output_stride`, and `seg.checkpoint_sha256` (the file it was made from).
Before it reports success the CLI runs the graph with onnxruntime on a few validation frames and compares
the labels with torch's.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from .paths import DEFAULT_CHECKPOINT, DEFAULT_DATA, SAMPLE_FRAMES

OPSET = 18
# Bumped whenever the exported graph or its metadata change, so cached graphs made by older code are rebuilt.
GRAPH_VERSION = 1


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


def deployed_model(ckpt: dict) -> nn.Module:
    """The checkpoint's model in eval mode with conv-BN folded (what both backends run), fp32, on the CPU."""
    from .predict import fold_conv_bn

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


EXPORTERS = ("auto", "torchscript", "dynamo")


def _export_graph(net: nn.Module, example: torch.Tensor, path: str, opset: int, exporter: str) -> None:
    """Write the ONNX graph of `net` to `path` with dynamic N, H, W, by one of torch.onnx's two exporters.

    "torchscript" (torch.onnx.export(dynamo=False), deprecated in torch but present in 2.14) exports this
    network in a few seconds; "dynamo" (torch.export-based) took over a minute on the project's 2-core CPU,
    almost all of it in symbolic-shape reasoning for the dynamic height and width. Both give the same logits
    (max abs difference ~1e-5 against torch) and run equally fast in onnxruntime. "auto": torchscript, and
    dynamo where torchscript is missing or fails.
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
    import onnx

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
            lines = str(e).strip().splitlines()
            raise ExportError(f"{ckpt.get('_path', 'checkpoint')}: ONNX export failed "
                              f"({e.__class__.__name__}: {lines[0][:160] if lines else ''})") from None
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


def verify(onnx_path: str | Path, ckpt_path: str | Path, n_frames: int = 4, data: Path = DEFAULT_DATA,
           kitti: Path = SAMPLE_FRAMES, threads: int | None = None) -> dict:
    """Compare the graph (onnxruntime) with the torch backend (fp32) on `n_frames` validation frames and one
    KITTI-shaped frame (another height and width: the dynamic axes at work).

    Labels are compared at the model size (`upsample_argmax` of each backend's logits), logits at the
    network's output. Returns dict(frames, agreement, max_abs_diff).
    """
    from .bench import KITTI_SIZE, frames
    from .onnxrt import OrtNet
    from .predict import Predictor, upsample_argmax

    ref = Predictor(ckpt_path, device="cpu", backend="torch", precision="fp32", threads=threads)
    net = OrtNet(onnx_path, threads=threads)
    th, tw = ref.input_size
    imgs = frames(Path(data) / "validation" / "images", (tw, th), n_frames, 0) + frames(Path(kitti), KITTI_SIZE, 1, 500)
    same = total = 0
    diff = 0.0
    for im in imgs:
        x = ref.model_input(im)
        a, b = ref.forward(x), net(x)
        la, lb = upsample_argmax(a, x.shape[-2:]), upsample_argmax(b, x.shape[-2:])
        same, total = same + int((la == lb).sum()), total + la.size
        diff = max(diff, agreement(b.numpy(), a.numpy())[1])
    return {"frames": len(imgs), "agreement": same / total, "max_abs_diff": diff}


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Export the deployed network of a checkpoint to ONNX and verify it.")
    p.add_argument("checkpoint", nargs="?", default=str(DEFAULT_CHECKPOINT),
                   help=f"checkpoint (default {DEFAULT_CHECKPOINT})")
    p.add_argument("--out", default="model.onnx", help="ONNX file to write (default model.onnx)")
    p.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset, at least 17 (default {OPSET})")
    p.add_argument("--exporter", choices=EXPORTERS, default="auto",
                   help="torch.onnx exporter: torchscript (seconds), dynamo (torch.export, slower), auto (the first that works)")
    p.add_argument("--frames", type=int, default=4, help="validation frames to verify on (default 4)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="Vistas-layout set whose validation frames are used")
    p.add_argument("--kitti", default=str(SAMPLE_FRAMES), help="folder of KITTI-shaped frames (one is used)")
    return p


MIN_AGREEMENT = 0.999


def main(argv: list[str] | None = None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    if args.opset < 17:
        parser.error("--opset must be at least 17")
    if args.frames < 1:
        parser.error("--frames must be at least 1")
    out = Path(args.out)
    try:
        ckpt = load_checkpoint(args.checkpoint)
        export_onnx(ckpt, out, file_sha256(args.checkpoint), args.opset, args.exporter)
        check = verify(out, args.checkpoint, args.frames, Path(args.data), Path(args.kitti))
    except (CheckpointError, ExportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except ImportError as e:
        print(f"error: {out}: written, but cannot verify it without onnxruntime ({e})", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {out}: cannot write ({e.strerror or e})", file=sys.stderr)
        return 1
    line = (f"{out}: {out.stat().st_size / 1e6:.1f} MB, opset {args.opset}; onnxruntime vs torch on "
            f"{check['frames']} frames: label agreement {check['agreement']:.5f}, "
            f"max abs logit difference {check['max_abs_diff']:.2e}")
    if check["agreement"] < MIN_AGREEMENT:
        print(f"error: {line} (below {MIN_AGREEMENT})", file=sys.stderr)
        return 1
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
