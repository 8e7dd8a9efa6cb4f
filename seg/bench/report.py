"""The benchmark behind the README's speed figures: `python -m seg.bench [--json FILE] [--quick]`, which
gathers the figures of seg.bench.pipeline (inference) and seg.bench.training into one report.

All figures come from one process on the given checkpoint (default: the bundled one), medians of several
runs after warm-up, on the CPU unless named cuda_*. The timings compared in a ratio are taken in
interleaved rounds (`timed_rounds`: one call of each per round), so a machine whose speed drifts while the
bench runs (this project's VM: 30-50% between minutes) shifts both sides of a ratio alike; the GEMM rate
behind flop_limit_ms is timed in the same rounds as the 512x384 frame.
- backend: the Predictor's default backend here (`--backend auto`), whose figures are the top-level keys;
  `backends` holds forward_ms / predict_ms / predict_full_ms / agreement (and *_kitti) of every CPU backend
  installed (torch, onnxruntime), measured in the same run;
- forward_ms: the deployed network alone, `Predictor.forward` (folded, its precision, its backend's input layout, up to
  the low-res logits); model_forward_ms: the same weights through the model's own torch forward;
- predict_ms: Predictor end to end, PIL image in -> full-size label map and overlay out;
- input_ms, labels_ms, picture_ms: predict's parts besides the network, on the same frame: image -> model
  input, low-res logits -> full-size labels (`upsample_argmax`), labels -> palette PNG and overlay;
- predict_full_ms: `Predictor.predict_full`, the app's path (labels and confidence map);
- naive_ms: the same weights through the pipeline a user would write from the torchvision docs;
- agreement: fraction of pixels where predict and naive give the same class (validation frames);
- flop_limit_ms: model FLOPs / this machine's measured fp32 GEMM rate (a lower bound for fp32);
- train_img_s, loader_img_s, synth_img_s: training throughput of `seg.train --preset demo`, of its data
  pipeline alone (same workers), and of the synthetic renderer. The preset's frame pool is cut to
  BENCH_POOL frames: the pool's size sets how long it takes to render up front, not the cost of a step.
The *_kitti keys repeat forward/predict/naive/agreement on 1242x375 KITTI-shaped frames. cpu, threads,
precision name the machine and the settings. With CUDA present (and `--device` auto or cuda), cuda_forward_ms,
cuda_predict_ms (+ _kitti), cuda_train_img_s (`seg.train --preset gpu`) and cuda_device, cuda_precision
are added beside the CPU figures.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path

import torch

from seg.bench.pipeline import NaivePipeline, cpu_backends, model_flops, pipeline_figures
from seg.bench.training import loader_figures, synth_img_s, train_figures
from seg.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from seg.data.samples import KITTI_SIZE, sample_frames
from seg.device import BACKENDS, cpu_name, describe, device_arg, resolve_device
from seg.infer import onnxrt
from seg.infer.predictor import Predictor
from seg.paths import DEFAULT_CHECKPOINT, DEFAULT_DATA, SAMPLE_FRAMES, printable


def _last_line(e: BaseException) -> str:
    """'ErrorClass: last line of its message', for an *_error key (a subprocess's or worker's message ends
    with the line that names the cause)."""
    lines = str(e).strip().splitlines()
    return f"{e.__class__.__name__}: {lines[-1][:200] if lines else ''}"


def run(checkpoint: Path, quick: bool, data: Path = DEFAULT_DATA, kitti: Path = SAMPLE_FRAMES,
        backend: str = "auto", device: str = "auto") -> dict:
    """Every figure of the module doc for `checkpoint`, as the JSON-ready dict `--json` writes."""
    runs, n_agree = (5, 4) if quick else (15, 16)
    ckpt = load_checkpoint(checkpoint)
    cuda = resolve_device(device).type == "cuda"
    pred, preds = cpu_backends(checkpoint, backend)
    naive = NaivePipeline(ckpt)
    th, tw = pred.input_size
    res: dict = {"checkpoint": str(checkpoint), "arch": pred.meta["arch"], "backend": pred.backend,
                 "precision": pred.precision, "cpu": cpu_name(), "threads": torch.get_num_threads(),
                 "torch": torch.__version__, "input_size": [th, tw]}
    if onnxrt.available():
        res["onnxruntime"] = version("onnxruntime")
    val = sample_frames(Path(data) / "validation" / "images", (tw, th), n_agree, 0)
    kit = sample_frames(Path(kitti), KITTI_SIZE, max(2, n_agree // 4), 500)
    res["backends"] = {}
    for name, p in preds.items():
        ref = p is pred  # backend-independent references once, with the default
        fig = pipeline_figures(p, naive, val, runs, reference=ref, gemm=ref)
        fig.update({f"{k}_kitti": v for k, v in pipeline_figures(p, naive, kit, max(3, runs // 2), reference=ref).items()})
        fig["precision"] = p.precision
        if ref:
            res.update(fig)
        res["backends"][name] = {k: v for k, v in fig.items() if not k.startswith(("model_", "naive_", "gemm_"))}
    flops = model_flops(model_from_checkpoint(ckpt), (th, tw))
    res["gflops"] = flops / 1e9
    res["flop_limit_ms"] = flops / (res["gemm_gflop_s"] * 1e9) * 1e3
    if cuda:
        res.update(cuda_figures(checkpoint, naive, val, kit, runs, quick))
    res.update(training_side(quick))
    add_ratios(res)
    return res


def training_side(quick: bool) -> dict:
    """synth_img_s, train_img_s, loader_img_s (seg.synth / seg.data / seg.train). A failure there is reported
    (key *_error, figure None) instead of raised, so the inference figures are not lost."""
    res: dict = {}
    try:
        res["synth_img_s"] = synth_img_s(3 if quick else 8)
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        res["synth_img_s"], res["synth_error"] = None, _last_line(e)
    steps = 10 if quick else 25
    try:
        res.update(train_figures(steps))
        res.update(loader_figures(steps))
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        res.setdefault("train_img_s", None)
        res["loader_img_s"], res["loader_error"] = None, _last_line(e)
    return res


def add_ratios(res: dict) -> None:
    """The ratios between figures: naive/predict, predict/forward, predict_full/predict (+ _kitti),
    predict/flop limit and, when both ran, loader/train."""
    for suffix in ("", "_kitti"):
        res[f"naive_over_predict{suffix}"] = res[f"naive_ms{suffix}"] / res[f"predict_ms{suffix}"]
        res[f"predict_over_forward{suffix}"] = res[f"predict_ms{suffix}"] / res[f"forward_ms{suffix}"]
        res[f"predict_full_over_predict{suffix}"] = res[f"predict_full_ms{suffix}"] / res[f"predict_ms{suffix}"]
    res["predict_over_flop_limit"] = res["predict_ms"] / res["flop_limit_ms"]
    if res.get("train_img_s") and res.get("loader_img_s"):
        res["loader_over_train"] = res["loader_img_s"] / res["train_img_s"]


def cuda_figures(checkpoint: Path, naive: NaivePipeline, val: list, kit: list, runs: int, quick: bool) -> dict:
    """cuda_forward_ms, cuda_predict_ms (+ _kitti), cuda_agreement, cuda_train_img_s (`--preset gpu`)."""
    pred = Predictor(checkpoint, device="cuda", backend="torch")
    out: dict = {"cuda_device": describe(pred.device), "cuda_precision": pred.precision}
    for suffix, imgs in (("", val), ("_kitti", kit)):
        fig = pipeline_figures(pred, naive, imgs, runs, reference=False)
        out.update({f"cuda_{k}{suffix}": fig[k] for k in ("forward_ms", "predict_ms", "agreement")})
    try:
        # A pool of several batches, so that each epoch keeps all loader workers busy.
        t = train_figures(20 if quick else 60, preset="gpu", device="cuda", pool=1024)
        out.update({"cuda_train_img_s": t["train_img_s"], "cuda_train_cmd": t["train_cmd"]})
        if "train_error" in t:
            out["cuda_train_error"] = t["train_error"]
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        out["cuda_train_img_s"], out["cuda_train_error"] = None, _last_line(e)
    return out


def format_table(res: dict) -> str:
    """`run`'s figures as the plain-text table the command prints."""
    def f(v):
        return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))

    versions = f"torch {res['torch']}" + (f", onnxruntime {res['onnxruntime']}" if res.get("onnxruntime") else "")
    lines = [f"{res['arch']} on {res.get('cpu', '?')}, {res['threads']} threads ({versions})",
             f"default backend: {res['backend']} ({res['precision']})",
             f"{'':<34}{'frame ' + 'x'.join(map(str, res['input_size'][::-1])):>16}{'KITTI 1242x375':>18}"]
    for k in ("forward_ms", "model_forward_ms", "predict_ms", "input_ms", "labels_ms", "picture_ms",
              "predict_full_ms", "naive_ms", "agreement", "naive_over_predict", "predict_over_forward",
              "predict_full_over_predict"):
        lines.append(f"{k:<34}{f(res.get(k)):>16}{f(res.get(k + '_kitti')):>18}")
    for name, fig in res.get("backends", {}).items():
        for k in ("forward_ms", "predict_ms", "predict_full_ms", "agreement"):
            label = f"{name} ({fig['precision']}) {k}"
            lines.append(f"{label:<34}{f(fig.get(k)):>16}{f(fig.get(k + '_kitti')):>18}")
    for k in ("cuda_forward_ms", "cuda_predict_ms", "cuda_agreement"):
        if k in res:
            lines.append(f"{k:<34}{f(res[k]):>16}{f(res.get(k + '_kitti')):>18}")
    for k in ("gflops", "gemm_gflop_s", "flop_limit_ms", "predict_over_flop_limit", "train_img_s", "loader_img_s",
              "loader_over_train", "synth_img_s", "cuda_device", "cuda_precision", "cuda_train_img_s",
              "train_error", "loader_error", "synth_error", "cuda_train_error"):
        if k in res:
            lines.append(f"{k:<34}{f(res[k]):>16}")
    return "\n".join(lines)


def get_args_parser() -> argparse.ArgumentParser:
    """The parser of `python -m seg.bench`."""
    p = argparse.ArgumentParser(description="Measure predict/naive/forward speed, agreement and training throughput.")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.add_argument("--quick", action="store_true", help="fewer runs and frames (a smoke run, noisier)")
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="checkpoint to measure")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="Vistas-layout set whose validation frames are used")
    p.add_argument("--kitti", default=str(SAMPLE_FRAMES), help="folder of KITTI-shaped frames")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="the default CPU backend, whose figures are the top-level keys (every installed one is measured)")
    p.add_argument("--device", type=device_arg, default="auto",
                   help="auto: add the cuda_* figures when CUDA is available; cpu: CPU figures only; cuda: require them")
    return p


def unwritable(path: str) -> str | None:
    """Why a file could not be written at `path`, or None: it is opened for appending (and removed again when
    this made it), without waiting on a FIFO that has no reader."""
    existed = os.path.lexists(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o644))
    except OSError as e:
        return e.strerror or str(e)
    if not existed:
        os.unlink(path)
    return None


def main(argv: list[str] | None = None) -> int:
    """`python -m seg.bench`: prints the table (and writes --json); 1 with one error line when it cannot run."""
    args = get_args_parser().parse_args(argv)
    # Checked before a minute or more of measuring, whose figures would otherwise be lost at the end.
    reason = unwritable(args.json) if args.json else None
    if reason:
        print(f"error: {printable(args.json)}: cannot write the --json file there ({reason})", file=sys.stderr)
        return 1
    try:
        res = run(Path(args.checkpoint), args.quick, Path(args.data), Path(args.kitti), args.backend, args.device)
    except (CheckpointError, ValueError) as e:  # ValueError: --device cuda without CUDA
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(format_table(res))
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
        except OSError as e:  # changed since the check: the table above still holds the figures
            print(f"error: {printable(args.json)}: could not be written ({e.strerror or e}); the figures are in "
                  "the table above", file=sys.stderr)
            return 1
    return 0
