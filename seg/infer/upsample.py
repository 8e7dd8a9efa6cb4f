"""Label and confidence maps from low-resolution logits, without the (C, H, W) upsampled logits.

The model's own last step (bilinear upsample of all C logit channels, then argmax) costs as much as the
backbone, so the Predictor stops at the low-res logits and `upsample_argmax` computes the same labels exactly,
interpolating only at class boundaries. numpy versions for logits on the CPU (small-table fancy indexing is
cheaper in numpy, and torch's OpenMP threads spin after each op and slow the next onnxruntime run); torch
versions (`*_t`, `upsample_confidence`) for logits on a GPU, so only uint8 labels cross to the host.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

_REVERSED_IDS = (254 - np.arange(255)).astype(np.uint8)[:, None]  # first_argmax's row weights
NO_CLASS = -1e30  # "no other class" in upsample_argmax's bound; far from float32 overflow, so 0 * it stays 0


@functools.lru_cache(maxsize=64)
def source_index(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F.interpolate's bilinear (align_corners=False) sampling along one axis: (i0, i1, weight of i1), (n_out,)."""
    src = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.intp), n_in - 1)
    return i0, np.minimum(i0 + 1, n_in - 1), (src - i0).astype(np.float32)


def _spans(i0: np.ndarray, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """(first output index, count) of the output samples whose lower source index is each input index."""
    first = np.searchsorted(i0, np.arange(n_in))
    return first, np.searchsorted(i0, np.arange(n_in), side="right") - first


def first_argmax(values: np.ndarray) -> np.ndarray:
    """(C, n) -> (n,) uint8 index of each column's first maximum, as numpy's / torch's argmax (C <= 255).

    numpy's argmax over axis 0 walks the columns one by one; here every step runs along the rows, several
    times faster: the maxima as a 0/1 mask, weighted 254 - row, whose column max is 254 - the first maximum's
    row. No BLAS product: OpenBLAS's threads spin after a call and would slow the next onnxruntime run.
    """
    mask = (values == values.max(0)).view(np.uint8)
    np.multiply(mask, _REVERSED_IDS[:values.shape[0]], out=mask)
    lab = 254 - mask.max(0)
    odd = lab >= values.shape[0]  # no maximum found: a column with a NaN (argmax returns the first NaN)
    if odd.any():
        lab[odd] = values[:, odd].argmax(0)
    return lab


def upsample_argmax(low: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """argmax over classes of the bilinear upsample of low (1, C, h, w) to size (H, W) -> (H, W) uint8,
    without computing the (C, H, W) upsampled logits.

    An upsampled logit vector is a convex combination of its 4 low-res neighbours (the corners of its cell);
    where all 4 have the same argmax c, c is also the argmax of the combination (l_c >= l_k in each, so in
    the mix). In the other cells (class boundaries) only the corners' own classes are mixed, and a bound on
    every other class decides whether one of them wins; only where it might (a few % of boundary pixels) are
    all C channels mixed. Mixing is F.interpolate's: along x, then along y, once per (cell, output column)
    and then per pixel. numpy, not torch: torch's advanced indexing of these small tables is far slower than
    np.take; arrays are (rows, n) so that numpy's inner loops run along n.
    """
    _, c, h, w = low.shape
    H, W = int(size[0]), int(size[1])
    y0, _, wy = source_index(h, H)
    x0, _, wx = source_index(w, W)
    flat = low[0].contiguous().numpy().reshape(c, h * w)  # (C, h*w) float32
    lab = first_argmax(flat).reshape(h, w)
    out = lab.take(y0, 0).take(x0, 1)  # (H, W): exact wherever the cell's 4 corners agree
    ky, kx, pix = _boundary_cells(lab)
    if not ky.size:
        return out
    cand, corners, cell = _candidate_table(flat, lab, pix)
    kc, xs, b, pair = _mix_along_x(cell, kx, *_spans(x0, w), wx)
    q, ys, a, m = _mix_along_y(pair, ky, kc, *_spans(y0, h), wy)
    best, j = _first_of_four(m)
    pos, kq = ys * W + xs[q], kc[q]
    flat_out = out.reshape(-1)  # a view: writes land in `out`
    flat_out[pos] = cand[j, kq]
    rest = best < m[4]
    if rest.any():  # another class may win: mix every other channel at these pixels (rare)
        _other_classes(flat_out, pos[rest], corners.take(kq[rest], 2), a[rest], b[q[rest]], best[rest])
    return out


def _boundary_cells(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The K low-res cells whose 4 corner labels differ, of (h, w) labels: (rows (K,), columns (K,), the
    corners' flat indices (4, K): top left, top right, bottom left, bottom right).

    Cell (i, j) has corners rows i, i + 1 and columns j, j + 1, clamped at the last row/column, as
    `source_index` pairs i0 with i1.
    """
    h, w = lab.shape
    r1, c1 = np.minimum(np.arange(h) + 1, h - 1), np.minimum(np.arange(w) + 1, w - 1)
    lab10 = lab.take(r1, 0)
    mixed = (lab != lab.take(c1, 1)) | (lab != lab10) | (lab != lab10.take(c1, 1))  # (h, w)
    ky, kx = mixed.nonzero()
    return ky, kx, np.stack([ky * w + kx, ky * w + c1[kx], r1[ky] * w + kx, r1[ky] * w + c1[kx]])


def _candidate_table(flat: np.ndarray, lab: np.ndarray,
                     pix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per boundary cell, the values to mix. flat (C, h*w) logits, lab (h, w) labels, pix (4, K) corners.

    Returns cand (4, K): the corners' own classes, the candidates; corners (C, 4, K): every logit at the
    corners, the candidates' own set to NO_CLASS; cell (4 corners q, 5, K): candidate s's value at q for
    s < 4, and at s = 4 the bound for every other class (q's best value outside the candidates). Each float
    step of the mix (a product with a weight >= 0, a sum) is monotone, so a candidate at or above the mixed
    bound is the argmax over all C classes.
    """
    k = pix.shape[1]
    cand = lab.reshape(-1)[pix]
    corners = flat.take(pix.reshape(-1), axis=1).reshape(flat.shape[0], 4, k)
    at = (cand[:, None, :], np.arange(4)[None, :, None], np.arange(k))  # [candidate s, corner q, cell]
    cell = np.empty((4, 5, k), np.float32)
    cell[:, :4] = corners[at].transpose(1, 0, 2)
    corners[at] = NO_CLASS
    cell[:, 4] = corners.max(0)
    return cand, corners, cell


def _run_offsets(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., n - 1 for each run length n in `counts`, concatenated: (counts.sum(),)."""
    return np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)


def _mix_along_x(cell: np.ndarray, kx: np.ndarray, first: np.ndarray, count: np.ndarray,
                 wx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mix along x, once per (cell, output column) pair: the cell's top and bottom rows at that column.

    cell (4, 5, K) from `_candidate_table`; kx (K,) the cells' columns; first, count: `_spans` of the
    columns; wx (W,) the x weights. Returns (kc (P,) cell of each pair, xs (P,) its output column, b (P,)
    its weight, pair (10, P): the top row's 4 candidates and bound, then the bottom row's).
    """
    ncol = count[kx]
    kc = np.repeat(np.arange(kx.size), ncol)
    xs = first[kx][kc] + _run_offsets(ncol)
    b = wx[xs]
    v = cell.reshape(20, -1).take(kc, 1)  # (20, P): rows 5q + s
    pair = np.empty((10, kc.size), np.float32)
    pair[0:5] = (1 - b) * v[0:5] + b * v[5:10]  # corners 0, 1 (top left, top right)
    pair[5:10] = (1 - b) * v[10:15] + b * v[15:20]  # corners 2, 3 (bottom left, bottom right)
    return kc, xs, b, pair


def _mix_along_y(pair: np.ndarray, ky: np.ndarray, kc: np.ndarray, first: np.ndarray, count: np.ndarray,
                 wy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mix along y, per pixel: each (cell, column) pair covers its cell's output rows.

    pair (10, P) and kc (P,) from `_mix_along_x`; ky (K,) the cells' rows; first, count: `_spans` of the
    rows; wy (H,) the y weights. Returns (q (N,) pair of each pixel, ys (N,) its output row, a (N,) its
    weight, m (5, N): the 4 candidates' values and the bound at each pixel).
    """
    nrow = count[ky][kc]
    q = np.repeat(np.arange(kc.size), nrow)
    ys = first[ky][kc][q] + _run_offsets(nrow)
    a = wy[ys]
    pq = pair.take(q, 1)  # (10, N)
    return q, ys, a, (1 - a) * pq[0:5] + a * pq[5:10]


def _first_of_four(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(best value (N,), index (N,) of its first maximum) of the 4 candidate rows of m (5, N), as argmax."""
    best, j = m[0].copy(), np.zeros(m.shape[1], np.intp)
    for s in (1, 2, 3):
        better = m[s] > best
        np.copyto(best, m[s], where=better)
        j[better] = s
    return best, j


def _other_classes(flat_out: np.ndarray, pos: np.ndarray, cv: np.ndarray, a: np.ndarray, b: np.ndarray,
                   best: np.ndarray) -> None:
    """Mix all C channels at R pixels where a non-candidate class may win; write the winners into flat_out.

    pos (R,) flat output indices; cv (C, 4, R) corner logits, the candidates at NO_CLASS; a, b (R,) y and x
    weights; best (R,) the best candidate's value, which another class must beat.
    """
    other = (1 - a) * ((1 - b) * cv[:, 0] + b * cv[:, 1]) + a * ((1 - b) * cv[:, 2] + b * cv[:, 3])
    k2 = first_argmax(other)
    win = other[k2, np.arange(k2.size)] > best
    flat_out[pos[win]] = k2[win]


def confidence_map(low: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """Max softmax probability of low (1, C, h, w) logits, bilinearly upsampled to size -> (H, W) float32.

    `upsample_confidence` in numpy, for logits on the CPU: torch's elementwise ops run on its
    OpenMP threads, whose spinning after each op would slow the next frame's onnxruntime run.
    """
    _, c, h, w = low.shape
    flat = low[0].contiguous().numpy().reshape(c, h * w)
    top = flat.max(0)
    conf = (1.0 / np.exp(flat - top).sum(0, dtype=np.float32)).astype(np.float32).reshape(h, w)
    H, W = int(size[0]), int(size[1])
    if (h, w) == (H, W):
        return conf
    y0, y1, wy = source_index(h, H)
    x0, x1, wx = source_index(w, W)
    rows = conf.take(y0, 0) * (1 - wy)[:, None] + conf.take(y1, 0) * wy[:, None]  # (H, w)
    return rows.take(x0, 1) * (1 - wx) + rows.take(x1, 1) * wx


@functools.lru_cache(maxsize=64)
def _source_index_t(n_in: int, n_out: int, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """F.interpolate's bilinear (align_corners=False) sampling along one axis on `device`: (i0, i1, w1), (n_out,)."""
    i0, i1, w = source_index(n_in, n_out)
    return (torch.from_numpy(i0).to(device), torch.from_numpy(i1).to(device), torch.from_numpy(w).to(device))


def upsample_argmax_t(low: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """argmax over classes of the bilinear upsample of low (1, C, h, w) to size (H, W) -> (H, W) uint8 on low's device.

    Where the 4 low-res neighbours of a pixel share their argmax, that is the pixel's class (a convex
    combination keeps the winner); only the boundary pixels are interpolated, exactly as F.interpolate does.
    """
    dev = str(low.device)
    y0, y1, wy = _source_index_t(low.shape[-2], int(size[0]), dev)
    x0, x1, wx = _source_index_t(low.shape[-1], int(size[1]), dev)
    hwc = low[0].float().permute(1, 2, 0)  # (h, w, C)
    lab = hwc.argmax(2)  # (h, w) int64
    r0, r1 = lab.index_select(0, y0), lab.index_select(0, y1)  # (H, w)
    l00, l01 = r0.index_select(1, x0), r0.index_select(1, x1)  # (H, W)
    l10, l11 = r1.index_select(1, x0), r1.index_select(1, x1)
    ys, xs = ((l00 != l01) | (l00 != l10) | (l00 != l11)).nonzero(as_tuple=True)
    if ys.numel():
        a, b = wy[ys, None], wx[xs, None]
        ya, yb, xa, xb = y0[ys], y1[ys], x0[xs], x1[xs]
        top = (1 - b) * hwc[ya, xa] + b * hwc[ya, xb]  # (N, C)
        bottom = (1 - b) * hwc[yb, xa] + b * hwc[yb, xb]
        l00[ys, xs] = ((1 - a) * top + a * bottom).argmax(1)
    return l00.to(torch.uint8)


def upsample_confidence(low: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Max softmax probability of low (N, C, h, w) logits, bilinearly upsampled to size -> (N, H, W) float32.

    Computed at the logits' resolution (1 channel instead of C to upsample), the way the labels are: the
    confidence of a pixel is interpolated between its 4 low-res neighbours' confidences.
    """
    low = low.float()
    top = low.amax(1, keepdim=True)
    conf = torch.exp(low - top).sum(1, keepdim=True).reciprocal_()  # (N, 1, h, w): 1 / sum exp(l - max)
    if tuple(conf.shape[-2:]) != (int(size[0]), int(size[1])):
        conf = F.interpolate(conf, size=(int(size[0]), int(size[1])), mode="bilinear", align_corners=False)
    return conf[:, 0]
