"""The procedural world as torch datasets: an endless per-worker stream and a pre-rendered pool."""
from __future__ import annotations

import multiprocessing as mp
import os

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from seg import synth
from seg.data.vistas import to_tv


def _rank_world() -> tuple[int, int]:
    """(rank, world size) from torch.distributed when initialized, else RANK/WORLD_SIZE, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _render_arrays(args: tuple[int, tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    seed, size = args
    image, ids = synth.render(seed, size=size)
    return np.asarray(image, dtype=np.uint8), np.asarray(ids, dtype=np.uint8)


class SynthPool(Dataset):
    """`n` training frames of the synthetic world rendered once, then reused with fresh augmentation.

    Rendering a frame costs several times its augmentation, and on a small CPU a DataLoader worker that
    renders competes with the training step for the same cores; a pool keeps the augmentation random
    but renders each frame only once. Frame i is SynthStream's training frame i (seed
    `seg.synth.frame_seed(split, seed, i)`, split "training"), rendered by `processes` spawned processes.
    `split="validation"` gives the frames `python -m seg.synth --seed SEED` writes to validation/ instead
    (held-out frames for calibration). Item i is like `VistasDataset`'s. Memory: about 0.8 MB per 512x384 frame.
    """

    def __init__(self, n: int, size: tuple[int, int] = (512, 384), seed: int = 0, transforms=None,
                 processes: int | None = None, split: str = "training"):
        if n < 1:
            raise ValueError(f"a synthetic pool needs at least 1 frame, got {n}")
        self.size, self.seed, self.transforms = tuple(size), int(seed), transforms
        jobs = [(synth.frame_seed(split, self.seed, i), self.size) for i in range(n)]
        processes = max(1, min(processes or os.cpu_count() or 1, n))
        w, h = self.size
        self.images = np.empty((n, h, w, 3), np.uint8)  # filled in place: no second copy at the peak
        self.labels = np.empty((n, h, w), np.uint8)  # ids
        if processes == 1:
            frames = map(_render_arrays, jobs)
        else:  # spawn, not fork: the parent already runs torch's thread pool
            pool = mp.get_context("spawn").Pool(processes)
            frames = pool.imap(_render_arrays, jobs, chunksize=max(1, min(32, n // (processes * 8))))
        try:
            for i, (image, ids) in enumerate(frames):
                self.images[i], self.labels[i] = image, ids
        finally:
            if processes > 1:
                pool.terminate()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        image, target = to_tv(self.images[i], self.labels[i])
        return self.transforms(image, target) if self.transforms is not None else (image, target)


class SynthStream(IterableDataset):
    """Endless training frames from `seg.synth.render`; each item like `VistasDataset`'s.

    Frame seeds: every (rank, DataLoader worker) pair is one of `n = world_size * num_workers` streams,
    `stream = rank * num_workers + worker`; its i-th frame is training frame `index = i * n + stream`, so
    streams interleave and never share a frame, and together they cover the single-process sequence.
    The render seed of training frame `index` is `seg.synth.frame_seed("training", seed, index)`, which
    never equals a validation frame's seed. Deterministic for a given
    (seed, rank, world size, worker, num_workers).
    """

    def __init__(self, size: tuple[int, int] = (512, 384), seed: int = 0, transforms=None):
        self.size, self.seed, self.transforms = tuple(size), int(seed), transforms

    def frame_seeds(self):
        """Endless render seeds of this process's stream (reads rank and worker at call time)."""
        rank, world = _rank_world()
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        n, stream = world * workers, rank * workers + worker
        i = 0
        while True:
            yield synth.frame_seed("training", self.seed, i * n + stream)
            i += 1

    def __iter__(self):
        for s in self.frame_seeds():
            image, ids = synth.render(s, size=self.size)
            image, target = to_tv(image, ids)
            yield self.transforms(image, target) if self.transforms is not None else (image, target)
