"""`python -m seg.export CHECKPOINT [--out model.onnx]`: export the deployed network to ONNX and verify it
with onnxruntime against torch on a few validation frames and one KITTI-shaped frame."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from seg.checkpoint import CheckpointError
from seg.data.samples import KITTI_SIZE, sample_frames
from seg.infer.export import EXPORTERS, OPSET, ExportError, agreement, export_onnx, read_checkpoint
from seg.infer.onnxrt import OrtNet
from seg.infer.predictor import Predictor
from seg.infer.upsample import upsample_argmax
from seg.paths import DEFAULT_CHECKPOINT, DEFAULT_DATA, SAMPLE_FRAMES

MIN_AGREEMENT = 0.999  # share of equal labels at the model size below which the graph is not reported good


def verify(onnx_path: str | Path, ckpt_path: str | Path, n_frames: int = 4, data: Path = DEFAULT_DATA,
           kitti: Path = SAMPLE_FRAMES, threads: int | None = None) -> dict:
    """Compare the graph (onnxruntime) with the torch backend (fp32) on `n_frames` validation frames and one
    KITTI-shaped frame (another height and width: the dynamic axes at work).

    Labels are compared at the model size (`upsample_argmax` of each backend's logits), logits at the
    network's output. Returns dict(frames, agreement, max_abs_diff).
    """
    ref = Predictor(ckpt_path, device="cpu", backend="torch", precision="fp32", threads=threads)
    net = OrtNet(onnx_path, threads=threads)
    th, tw = ref.input_size
    imgs = sample_frames(Path(data) / "validation" / "images", (tw, th), n_frames, 0)
    imgs += sample_frames(Path(kitti), KITTI_SIZE, 1, 500)
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
    """The flags of `python -m seg.export`."""
    p = argparse.ArgumentParser(description="Export the deployed network of a checkpoint to ONNX and verify it.")
    p.add_argument("checkpoint", nargs="?", default=str(DEFAULT_CHECKPOINT),
                   help=f"checkpoint (default {DEFAULT_CHECKPOINT})")
    p.add_argument("--out", default="model.onnx", help="ONNX file to write (default model.onnx)")
    p.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset, at least 17 (default {OPSET})")
    p.add_argument("--exporter", choices=EXPORTERS, default="auto",
                   help="torch.onnx exporter: torchscript (seconds), dynamo (torch.export, slower), "
                        "auto (the first that works)")
    p.add_argument("--frames", type=int, default=4, help="validation frames to verify on (default 4)")
    # None: the bundled folders, topped up with synthetic frames where they are missing; a folder given must exist.
    p.add_argument("--data", default=None,
                   help=f"Vistas-layout set whose validation frames are used (default {DEFAULT_DATA})")
    p.add_argument("--kitti", default=None,
                   help=f"folder of KITTI-shaped frames, one is used (default {SAMPLE_FRAMES})")
    return p


def bad_paths(args: argparse.Namespace) -> str | None:
    """Why the paths of `args` cannot be used (one line naming the path), or None.

    An --out that is the checkpoint itself would be replaced by the graph; a --data or --kitti folder that
    is missing would be replaced, silently, by synthetic frames.
    """
    out, ckpt = Path(args.out), Path(args.checkpoint)
    try:
        same = out.resolve() == ckpt.resolve() or (out.exists() and ckpt.exists() and os.path.samefile(out, ckpt))
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop; the export reports the path itself
        same = False
    if same:
        return f"{out}: is the checkpoint itself; writing the graph there would replace it (choose another --out)"
    for flag, folder in (("--data", args.data), ("--kitti", args.kitti)):
        if folder is not None and not Path(folder).is_dir():
            return f"{folder}: no such folder ({flag})"
    return None


def main(argv: list[str] | None = None) -> int:
    """Export, verify and print one line; 0 on success, 1 with one `error:` line otherwise (2: bad paths)."""
    parser = get_args_parser()
    args = parser.parse_args(argv)
    if args.opset < 17:
        parser.error("--opset must be at least 17")
    if args.frames < 1:
        parser.error("--frames must be at least 1")
    problem = bad_paths(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    out = Path(args.out)
    data, kitti = Path(args.data or DEFAULT_DATA), Path(args.kitti or SAMPLE_FRAMES)
    try:
        ckpt, sha256 = read_checkpoint(args.checkpoint)
        export_onnx(ckpt, out, sha256, args.opset, args.exporter)
        check = verify(out, args.checkpoint, args.frames, data, kitti)
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
