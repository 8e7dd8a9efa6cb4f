"""The onnxruntime backend: the deployed network as an ONNX graph, built from the checkpoint on first use.

Why: on a small CPU onnxruntime runs the same fp32 network about twice as fast as torch, and its logits
match torch's to ~1e-5.

Cache: graphs live in `$SEG_CACHE_DIR` (default `~/.cache/seg`) under `onnx/<key>.onnx`, where the key
hashes the checkpoint file's *content* (SHA-256) with the graph version, torch version and opset, so an
edited, replaced or retrained checkpoint never meets an old graph, whatever its path or timestamp. A cached
file is used only if its own metadata names the same checkpoint hash and key; otherwise (or if it does not
load) it is rebuilt. A freshly built graph is checked against torch on one input before it is kept.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np
import torch

from seg.cli import one_line
from seg.infer.export import GRAPH_VERSION, OPSET, ExportError, agreement, export_onnx, file_sha256

MIN_AGREEMENT = 0.999  # low-res argmax cells; fp32 vs fp32 differ only by summation order


def available() -> bool:
    """Whether onnxruntime can be imported here."""
    return importlib.util.find_spec("onnxruntime") is not None


def cache_dir() -> Path:
    """Folder of cached graphs: $SEG_CACHE_DIR, else ~/.cache/seg."""
    return Path(os.environ.get("SEG_CACHE_DIR") or Path.home() / ".cache" / "seg")


def cache_key(sha256: str, opset: int = OPSET) -> str:
    """File name (32 hex digits) of the cached graph of a checkpoint with content hash `sha256`."""
    text = f"{sha256}|graph {GRAPH_VERSION}|torch {torch.__version__}|opset {opset}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class OrtNet:
    """An onnxruntime session over a seg graph: `net(x (N, 3, H, W) float) -> (N, C, h, w) float32` tensor.

    Args: path of the .onnx file; threads: intra-op threads (default: torch's current thread count, so
    `--threads` means the same on both backends). Raises ExportError (one line) if the file does not load.
    """

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort  # here: without it the Predictor still imports, and falls back to torch

        self.path = Path(path)
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads or torch.get_num_threads())
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting between runs: spinning threads would take the cores from the label upsample and
        # image work that follows each frame, for no gain in the network's own time.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for bad files
            raise ExportError(f"{self.path}: onnxruntime cannot load it ({one_line(e, 160, kind=True)})") from None
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.version = ort.__version__
        self._input = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        a = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)  # NCHW, whatever x's memory format
        return torch.from_numpy(self.session.run(None, {self._input: a})[0])


def _check_against_torch(net: OrtNet, model: torch.nn.Module, input_size: tuple[int, int]) -> None:
    """Raise ExportError unless the graph's labels match the torch model's on one fixed random input."""
    x = torch.randn(1, 3, *input_size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref = model(x, full_size=False).float().numpy()
    same, diff = agreement(net(x).numpy(), ref)
    if same < MIN_AGREEMENT:
        raise ExportError(f"{net.path}: graph disagrees with torch (label agreement {same:.4f}, "
                          f"max abs logit difference {diff:.2e})")


def load_or_build(ckpt_path: str | Path, ckpt: dict, model: torch.nn.Module, threads: int | None = None) -> OrtNet:
    """The cached graph of the checkpoint at `ckpt_path`, built (and checked) if missing or stale.

    `ckpt` is that file loaded, `model` its deployed (folded, eval) torch model, used for the check.
    Raises ImportError without onnxruntime, ExportError (one line) when no usable graph can be made,
    OSError when the cache folder cannot be written.
    """
    if not available():  # fail before spending seconds on an export nobody can run
        raise ImportError("onnxruntime is not installed")

    sha = file_sha256(ckpt_path)
    key = cache_key(sha)
    path = cache_dir() / "onnx" / f"{key}.onnx"
    if path.is_file():
        try:
            net = OrtNet(path, threads)
            meta = net.metadata
            if meta.get("seg.checkpoint_sha256") == sha and meta.get("seg.graph_version") == str(GRAPH_VERSION):
                return net
        except ExportError:
            pass  # unreadable cache entry: rebuilt below
    export_onnx(ckpt, path, sha)
    net = OrtNet(path, threads)
    try:
        _check_against_torch(net, model, tuple(int(v) for v in ckpt["input_size"]))
    except ExportError:
        path.unlink(missing_ok=True)
        raise
    return net
