"""Predictor: checkpoint -> a CPU-tuned model that turns any image into a label map at the image's own size.

Deployment choices (measured on the 2-core AVX-512 dev box at 384x512, deeplabv3_mobilenet_v3_large,
`python -m seg.bench`): fp32 contiguous 84 ms -> channels_last 69 ms -> + conv-bn folding 55 ms ->
+ bf16 autocast 25 ms (the CPU has avx512_bf16; `precision="fp32"` turns it off). Measured with a
randomly initialised checkpoint on a shared machine: re-measure on the bundled one.

Geometry: the model sees the frame at its trained scale. The height is matched to the checkpoint's input
height and the width follows the frame's own aspect ratio (rounded to a multiple of 16, the output stride),
so a 1242x375 KITTI frame runs at 1264x384 instead of being squashed to 512x384 (objects would be 2.4x
thinner than in training). Frames larger than 4x the trained pixel count are scaled down to that budget.
Labels: the model's own last step (bilinear upsample of all 66 logit channels, then argmax) cost as much
as the backbone, so the Predictor stops at the low-res logits and `upsample_argmax` computes the same
labels exactly, interpolating only at class boundaries; the label map is then nearest-resized from the
model size to the input size (a few % change of scale; bounded memory for huge photos).
"""
from __future__ import annotations

import argparse
import functools
import math
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from .classes import ClassTable
from .imageio import IMAGE_EXTENSIONS, ImageError, image_files, load_image
from .paths import DEFAULT_CHECKPOINT
from . import video
from .viz import overlay_image, to_label_png

SIZE_MULTIPLE = 16  # output stride of the MobileNet models (ResNet's 8 divides it)
MAX_AREA_FACTOR = 4  # model-input pixel budget, in units of the trained input area
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class Prediction:
    labels: np.ndarray  # (H, W) uint8 class ids at the input's size
    confidence: np.ndarray  # (H, W) float32 max softmax probability
    ms: float  # wall time of predict_full, decode excluded


def fold_conv_bn(model: nn.Module) -> int:
    """Fold every BatchNorm2d that directly follows a Conv2d inside an nn.Sequential into the conv (in place).

    This covers torchvision's Conv2dNormActivation blocks (MobileNet, ASPP, LR-ASPP heads). Eval mode only:
    uses the running statistics. Returns the number of pairs folded.
    """
    if model.training:
        raise ValueError("fold_conv_bn needs a model in eval mode")
    folded = 0
    for seq in list(model.modules()):
        if not isinstance(seq, nn.Sequential):
            continue
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                seq._modules[a] = fuse_conv_bn_eval(conv, bn)
                seq._modules[b] = nn.Identity()
                folded += 1
    return folded


def bf16_supported() -> bool:
    """Whether this CPU has native bf16 math (avx512_bf16 / AMX); elsewhere bf16 is emulated and slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def model_size(h: int, w: int, input_size: tuple[int, int]) -> tuple[int, int]:
    """(H, W) the model runs at for an h x w frame: trained height, aspect-kept width (see module doc)."""
    th, tw = input_size
    if abs(w / h - tw / th) < 0.01:
        return th, tw
    mh, mw = float(th), w * th / h
    budget = MAX_AREA_FACTOR * th * tw
    rnd = round
    if mh * mw > budget:
        f = math.sqrt(budget / (mh * mw))
        mh, mw, rnd = mh * f, mw * f, math.floor  # round down to stay within the budget
    snap = lambda v: max(SIZE_MULTIPLE, int(rnd(v / SIZE_MULTIPLE)) * SIZE_MULTIPLE)  # noqa: E731
    return (th if mh == th else snap(mh)), snap(mw)


@functools.lru_cache(maxsize=32)
def _interp_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) weights of 1-D linear interpolation with align_corners=False (F.interpolate's rule)."""
    eye = torch.eye(n_in).unsqueeze(0)  # (1, n_in channels, n_in samples)
    return F.interpolate(eye, size=n_out, mode="linear", align_corners=False)[0].T.contiguous()


def upsample_hwc(low: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsample (1, C, h, w) -> (H, W, C), equal to F.interpolate(bilinear, align_corners=False).

    Bilinear is separable: out = A_h @ L @ A_w^T per channel. Width first on the h low-res rows (small),
    then height as one large GEMM over all W * C columns.
    """
    _, c, h, w = low.shape
    H, W = int(size[0]), int(size[1])
    a_h, a_w = _interp_matrix(h, H).to(low), _interp_matrix(w, W).to(low)
    rows = torch.matmul(a_w, low[0].permute(1, 2, 0))  # (W, w) @ (h, w, C) -> (h, W, C)
    return (a_h @ rows.reshape(h, W * c)).view(H, W, c)  # (H, W, C)


@functools.lru_cache(maxsize=64)
def _source_index(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F.interpolate's bilinear (align_corners=False) sampling along one axis: (i0, i1, weight of i1), (n_out,)."""
    src = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.intp), n_in - 1)
    return i0, np.minimum(i0 + 1, n_in - 1), (src - i0).astype(np.float32)


def upsample_argmax(low: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """argmax over classes of the bilinear upsample of low (1, C, h, w) to size (H, W) -> (H, W) uint8,
    without computing the (C, H, W) upsampled logits.

    An upsampled logit vector is a convex combination of its 4 low-res neighbours; where all 4 have the
    same argmax c, c is also the argmax of the combination (l_c >= l_k in each, so in the mix). Only the
    pixels whose neighbours disagree (class boundaries) are interpolated, exactly as F.interpolate does.
    numpy, not torch: torch's advanced indexing of these small tables took 7 ms where np.take takes 0.1 ms.
    """
    _, c, h, w = low.shape
    y0, y1, wy = _source_index(h, int(size[0]))
    x0, x1, wx = _source_index(w, int(size[1]))
    hwc = low[0].permute(1, 2, 0).contiguous().numpy()  # (h, w, C) float32
    lab = hwc.argmax(2).astype(np.uint8)  # (h, w)
    r0, r1 = lab.take(y0, 0), lab.take(y1, 0)  # (H, w)
    l00, l01, l10, l11 = r0.take(x0, 1), r0.take(x1, 1), r1.take(x0, 1), r1.take(x1, 1)  # (H, W)
    ys, xs = ((l00 != l01) | (l00 != l10) | (l00 != l11)).nonzero()
    if ys.size:
        a, b = wy[ys, None], wx[xs, None]
        top = (1 - b) * hwc[y0[ys], x0[xs]] + b * hwc[y0[ys], x1[xs]]  # (N, C)
        bottom = (1 - b) * hwc[y1[ys], x0[xs]] + b * hwc[y1[ys], x1[xs]]
        l00[ys, xs] = ((1 - a) * top + a * bottom).argmax(1)
    return l00


class Predictor:
    """Loads a checkpoint once and predicts label maps; safe to share between threads (app sessions).

    Args:
        checkpoint: path (default `seg.paths.DEFAULT_CHECKPOINT`).
        device: torch device string (default "cpu").
        threads: torch intra-op threads (process-wide setting); None leaves torch's default (all cores).
        precision: "auto" (bf16 on CPUs with native bf16, else fp32), "fp32" or "bf16".
    Raises CheckpointError (one line) for an unusable checkpoint.
    """

    def __init__(self, checkpoint=None, device=None, threads: int | None = None, precision: str = "auto"):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if threads is not None:
            torch.set_num_threads(int(threads))
        self.device = torch.device(device or "cpu")
        path = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
        ckpt = load_checkpoint(path)
        self.classes = ClassTable.from_dict(ckpt["classes"])
        self.input_size = (int(ckpt["input_size"][0]), int(ckpt["input_size"][1]))
        model = model_from_checkpoint(ckpt)
        folded = fold_conv_bn(model)
        self.model = model.to(self.device, memory_format=torch.channels_last)
        if precision == "auto":
            precision = "bf16" if self.device.type == "cpu" and bf16_supported() else "fp32"
        self.precision = precision
        mean = torch.tensor(ckpt["normalize"]["mean"], dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(ckpt["normalize"]["std"], dtype=torch.float32).view(1, 3, 1, 1)
        # uint8 x -> (x / 255 - mean) / std as one multiply-add.
        self._scale = (1.0 / (255.0 * std)).to(self.device)
        self._shift = (-mean / std).to(self.device)
        self._lock = threading.Lock()
        self.meta = {
            "arch": ckpt["model_args"]["arch"],
            "steps": int(ckpt.get("step") or 0),
            "input_size": self.input_size,
            "best_miou": ckpt.get("best_miou"),
            "val_miou": ckpt.get("val_miou"),  # these weights' own validation mIoU, when evaluated
            "path": str(path),
            "precision": precision,
            "folded_bn": folded,
            "classmap": ckpt.get("classmap"),  # e.g. "lanes": the dataset classes this model's were folded from
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The deployed network: normalized (1, 3, h, w) channels_last -> low-res (1, C, h/s, w/s) fp32 logits.

        The model's own forward ends with a bilinear upsample of all C logit channels to (h, w); that and the
        argmax over its result cost as much as the backbone (bf16 at 384x512: 5 + 20 ms vs 19 ms), so the
        Predictor stops before it and upsamples labels with `upsample_argmax` (same labels, ~2 ms).
        """
        with self._lock, torch.inference_mode():
            with torch.autocast(self.device.type, torch.bfloat16, enabled=self.precision == "bf16"):
                low = self.model(x, full_size=False)
            return low.float()

    def _input(self, image: Image.Image) -> torch.Tensor:
        """RGB image -> normalized (1, 3, h, w) channels_last float at its model size (see `model_size`)."""
        size = model_size(image.height, image.width, self.input_size)
        if (image.height, image.width) != size:
            image = image.resize((size[1], size[0]), Image.BILINEAR)
        x = torch.from_numpy(np.array(image)).to(self.device)  # (h, w, 3) uint8; a writable copy (~0.1 ms)
        x = x.permute(2, 0, 1).unsqueeze(0)  # (1, 3, h, w), already channels_last in memory
        return torch.addcmul(self._shift, x.float(), self._scale)

    def scores(self, image: Image.Image) -> torch.Tensor:
        """(h, w, C) float32 logits at the image's model size: what the model's own forward returns."""
        x = self._input(image)
        return upsample_hwc(self.forward(x), x.shape[-2:])

    def predict(self, img) -> np.ndarray:
        """Image (PIL, (H, W, 3) uint8 array, path or bytes) -> (H, W) uint8 class ids at its own size."""
        image = self._image(img)
        x = self._input(image)
        with torch.inference_mode():
            small = upsample_argmax(self.forward(x).cpu(), x.shape[-2:])  # (h, w) uint8
        return self._to_size(small, image.size, Image.NEAREST)

    def predict_full(self, img) -> Prediction:
        """Like `predict`, plus per-pixel confidence (max softmax probability) and the elapsed ms."""
        image = self._image(img)
        t0 = time.perf_counter()
        with torch.inference_mode():
            logits = self.scores(image)  # (h, w, C)
            top, idx = logits.max(-1)
            # max softmax = 1 / sum(exp(l - max)), without materialising the softmax.
            conf = torch.exp(logits - top.unsqueeze(-1)).sum(-1).reciprocal_()
            small = idx.to(torch.uint8).cpu().numpy()
            conf = conf.cpu().numpy()
        labels = self._to_size(small, image.size, Image.NEAREST)
        confidence = self._to_size(conf, image.size, Image.BILINEAR)
        return Prediction(labels, confidence, (time.perf_counter() - t0) * 1e3)

    @staticmethod
    def _image(img) -> Image.Image:
        if isinstance(img, Image.Image):
            return img if img.mode == "RGB" else img.convert("RGB")
        if isinstance(img, np.ndarray):
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {img.dtype} {img.shape}")
            return Image.fromarray(img)
        return load_image(img)

    @staticmethod
    def _to_size(a: np.ndarray, size: tuple[int, int], resample) -> np.ndarray:
        if a.shape == (size[1], size[0]):
            return a
        return np.asarray(Image.fromarray(a).resize(size, resample))


def expand_inputs(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Files as given, folders expanded to their images (sorted, not recursive). Returns (files, errors)."""
    files, errors = [], []
    for p in map(Path, paths):
        if p.is_dir():
            found = image_files(p)
            if not found:
                errors.append(f"{p}: folder has no images ({', '.join(IMAGE_EXTENSIONS)})")
            files += found
        else:
            files.append(p)  # missing files are reported by load_image, in order
    return files, errors


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Segment images: writes OUT/<stem>.png (paletted class ids); "
                                            "video clips: OUT/<stem>_overlay.mp4 (see seg/video.py).")
    p.add_argument("images", nargs="+", help="image files, folders of images, or video clips")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--checkpoint", default=None, help=f"checkpoint (default {DEFAULT_CHECKPOINT})")
    p.add_argument("--overlay", action="store_true", help="also write OUT/<stem>_overlay.jpg")
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help="model precision on CPU")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    video.add_args(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        predictor = Predictor(args.checkpoint, threads=args.threads, precision=args.precision)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"error: {out}: cannot create output folder ({e.strerror})", file=sys.stderr)
        return 1
    clips, images = video.split_inputs(args.images, args.fps)
    files, errors = expand_inputs(images)
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    failed, written = len(errors) + video.run_clips(predictor, clips, out, args), {}
    for f in files:
        try:
            if f.stem in written:
                raise ImageError(f.name, f"same output name {f.stem}.png as {written[f.stem]}; skipped")
            image = load_image(f)
            labels = predictor.predict(image)
            to_label_png(labels, predictor.classes).save(out / f"{f.stem}.png")
            if args.overlay:
                overlay_image(image, labels, predictor.classes).save(out / f"{f.stem}_overlay.jpg", quality=90)
            written[f.stem] = str(f)
            print(out / f"{f.stem}.png")
        except ImageError as e:
            failed += 1
            print(f"error: {e}", file=sys.stderr)
        except OSError as e:  # writing the outputs
            failed += 1
            print(f"error: {f.name}: cannot write output ({e.strerror or e})", file=sys.stderr)
        except (RuntimeError, ValueError) as e:  # e.g. out of memory on a huge frame: report, go on
            failed += 1
            first = (str(e).strip().splitlines() or [""])[0][:200]
            print(f"error: {f.name}: {e.__class__.__name__}: {first}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
