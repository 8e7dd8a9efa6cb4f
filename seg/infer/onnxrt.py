"""The onnxruntime backend: the deployed network as an ONNX graph, built from the checkpoint on first use.

Why: on a small CPU onnxruntime runs the same fp32 network about twice as fast as torch, and its logits
match torch's to ~1e-5.

Cache (`seg.infer.onnxcache`): graphs are kept per checkpoint content, in a folder only this user may
write, each with a record of its own hash. Every load, cached or fresh, is checked against torch on one
fixed input at the trained size before it is used; a graph that disagrees is rebuilt once, then refused.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from seg.cli import one_line
from seg.infer.export import ExportError, agreement, export_onnx
from seg.infer.onnxcache import (cache_dir, cache_key, graph_folder, read_entry, read_trusted, remove_entry,
                                 write_record)

__all__ = ["MIN_AGREEMENT", "available", "cache_dir", "cache_key", "OrtNet", "load_or_build"]

MIN_AGREEMENT = 0.999  # low-res argmax cells; fp32 vs fp32 differ only by summation order


def available() -> bool:
    """Whether onnxruntime can be imported here."""
    return importlib.util.find_spec("onnxruntime") is not None


class OrtNet:
    """An onnxruntime session over a seg graph: `net(x (N, 3, H, W) float) -> (N, C, h, w) float32` tensor.

    Args: path of the .onnx file; threads: intra-op threads (default: torch's current thread count, so
    `--threads` means the same on both backends); data: the file's bytes when already read (then the session
    is made from exactly those bytes, `path` only names it). Raises ExportError (one line) if it does not load.
    """

    def __init__(self, path: str | Path, threads: int | None = None, data: bytes | None = None):
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
            source = str(self.path) if data is None else data
            self.session = ort.InferenceSession(source, so, providers=["CPUExecutionProvider"])
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


def load_or_build(sha256: str, ckpt: dict, model: torch.nn.Module, threads: int | None = None) -> OrtNet:
    """The graph of the checkpoint whose file content hashes to `sha256`: the cached one (`seg.infer.onnxcache`)
    when it is trusted and agrees with torch, else built, checked and cached.

    `ckpt` is that file loaded (from the very bytes hashed), `model` its deployed (folded, eval) torch model,
    used for the check. Raises ImportError without onnxruntime, ExportError (one line) when no graph that
    agrees with torch can be made, OSError when no safe cache folder can be written.
    """
    if not available():  # fail before spending seconds on an export nobody can run
        raise ImportError("onnxruntime is not installed")
    size = tuple(int(v) for v in ckpt["input_size"])
    folder, key = graph_folder(), cache_key(sha256)
    path = folder / f"{key}.onnx"
    graph = read_entry(folder, key, sha256)
    if graph is not None:
        try:
            net = OrtNet(path, threads, data=graph)
            _check_against_torch(net, model, size)
            return net
        except ExportError:
            pass  # edited, corrupted or disagreeing: rebuilt below, both files replaced atomically
    export_onnx(ckpt, path, sha256)
    try:
        graph = read_trusted(path)
        if graph is None:
            raise ExportError(f"{path}: the graph just written cannot be read back")
        net = OrtNet(path, threads, data=graph)
        _check_against_torch(net, model, size)
        write_record(folder, key, sha256, graph)
    except BaseException:
        remove_entry(folder, key)
        raise
    return net
