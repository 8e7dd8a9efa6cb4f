"""The app's cache of decoded frames and predictions is bounded by bytes, not entries (issue 23.3): with 32
entries of 40-megapixel results a server kept ~10 GB. Tested with a tiny byte budget and tiny frames."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from seg.classes import VISTAS
from webapp import ui, views
from webapp.bytecache import ByteLRU, nbytes


class CountingPredictor:
    """Road everywhere, confidence 1; counts the frames it was asked to segment."""

    classes = VISTAS
    meta = {"arch": "stand-in", "steps": 0}

    def __init__(self):
        self.calls = 0

    def predict_full(self, rgb):
        self.calls += 1
        h, w = np.shape(rgb)[:2]
        return type("Full", (), {"labels": np.full((h, w), 13, np.uint8),
                                 "confidence": np.ones((h, w), np.float32), "ms": 1.0})()


def png(w: int, h: int, seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def cache(monkeypatch):
    c = ui.pixel_cache()
    c.clear()
    one = nbytes(views.run_inference(CountingPredictor(), "x.png", png(32, 24, 0)))
    monkeypatch.setattr(c, "max_bytes", int(1.5 * one))  # room for one 32x24 result, not two
    yield c
    c.clear()


def test_inference_results_are_kept_within_a_byte_budget(cache):
    pred = CountingPredictor()
    frames = [(f"f{i}.png", png(32, 24, i)) for i in range(3)]
    for name, data in frames:
        res = ui.infer(pred, ui.model_key(pred), name, data)
        assert isinstance(res, views.InferenceResult) and cache.bytes <= cache.max_bytes
    assert pred.calls == 3 and len(cache) == 1
    ui.infer(pred, ui.model_key(pred), *frames[-1])  # the newest is kept: a slider move costs nothing
    assert pred.calls == 3
    ui.infer(pred, ui.model_key(pred), *frames[0])  # the oldest was let go to stay in budget
    assert pred.calls == 4 and cache.bytes <= cache.max_bytes


def test_a_result_larger_than_the_budget_is_served_but_not_kept(cache):
    pred = CountingPredictor()
    res = ui.infer(pred, ui.model_key(pred), "big.png", png(64, 48, 1))
    assert isinstance(res, views.InferenceResult) and res.labels.shape == (48, 64)
    assert len(cache) == 0 and cache.bytes == 0


def test_kept_results_are_shared_read_only(cache):
    pred = CountingPredictor()
    res = ui.infer(pred, ui.model_key(pred), "f.png", png(32, 24, 2))
    for a in (res.image, res.labels, res.confidence):
        with pytest.raises(ValueError, match="read-only"):
            a[0, 0] = 0


def test_byte_lru_evicts_least_recently_used_first():
    lru = ByteLRU(max_bytes=300)
    for k in "abc":
        lru.put(k, np.zeros(100, np.uint8))
    assert lru.bytes == 300 and len(lru) == 3
    lru.get("a")  # now the most recent
    lru.put("d", np.zeros(100, np.uint8))
    assert "b" not in lru and all(k in lru for k in "acd") and lru.bytes == 300
    lru.put("a", np.zeros(250, np.uint8))  # replacing an entry counts its new size only
    assert list(k for k in "abcd" if k in lru) == ["a"] and lru.bytes == 250
    assert nbytes({"k": (np.zeros(10, np.float32), b"xy")}) == 1 + 40 + 2 + 64
