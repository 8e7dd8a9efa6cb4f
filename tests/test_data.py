"""seg.data: pairing, label reading by palette index, transforms, SynthStream, SynthPool, list_images."""
from __future__ import annotations

import json
import types

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from seg.data import synthetic, vistas
from seg.model import MEAN as IMAGENET_MEAN, STD as IMAGENET_STD
from seg.classes import IGNORE_INDEX, VISTAS
from seg.data.synthetic import SynthPool, SynthStream
from seg.data.transforms import get_transform
from seg.data.vistas import DataError, VistasDataset, check_split, list_images

W, H = 64, 48
CAR = (0, 0, 142)


def _label_png(path, ids: np.ndarray, palette=None) -> None:
    im = Image.fromarray(ids.astype(np.uint8), mode="P")
    im.putpalette(palette if palette is not None else VISTAS.flat_palette())
    im.save(path)


def _frame(root, split, stem, ids=None, ext=".jpg", color=(90, 120, 30)):
    (root / split / "images").mkdir(parents=True, exist_ok=True)
    (root / split / "labels").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (W, H), color).save(root / split / "images" / f"{stem}{ext}")
    if ids is not None:
        _label_png(root / split / "labels" / f"{stem}.png", ids)


def _ids(value=13):
    return np.full((H, W), value, np.uint8)


def test_pairs_by_stem_and_reads_items(tmp_path):
    _frame(tmp_path, "training", "b", _ids(27), ext=".png")
    _frame(tmp_path, "training", "a", _ids(13), ext=".jpeg")
    ds = VistasDataset(tmp_path, "training")
    assert [(i.name, l.name) for i, l in ds.pairs] == [("a.jpeg", "a.png"), ("b.png", "b.png")]
    image, target = ds[1]
    assert isinstance(image, tv_tensors.Image) and image.dtype == torch.uint8 and image.shape == (3, H, W)
    assert isinstance(target, tv_tensors.Mask) and target.dtype == torch.int64 and target.shape == (H, W)
    assert target.unique().tolist() == [27]
    assert ds.classes is VISTAS


def test_missing_label_names_the_file(tmp_path):
    _frame(tmp_path, "validation", "a", _ids())
    _frame(tmp_path, "validation", "lonely")  # image without a label
    with pytest.raises(DataError, match="lonely.jpg"):
        VistasDataset(tmp_path, "validation")
    assert issubclass(DataError, ValueError)


def test_label_without_image_is_an_error(tmp_path):
    _frame(tmp_path, "validation", "a", _ids())
    _label_png(tmp_path / "validation" / "labels" / "orphan.png", _ids())
    with pytest.raises(DataError, match="orphan.png"):
        VistasDataset(tmp_path, "validation")


def test_v10_palette_with_repeated_colors_reads_exact_indices(tmp_path):
    _frame(tmp_path, "training", "a")
    palette = VISTAS.palette().copy()
    for i in (54, 55, 60):  # three classes share (0, 0, 142), as in Vistas v1.0
        palette[i] = CAR
    ids = np.zeros((H, W), np.uint8)
    ids[:, 16:32], ids[:, 32:48], ids[:, 48:] = 54, 55, 60
    _label_png(tmp_path / "training" / "labels" / "a.png", ids, palette.reshape(-1).tolist())
    _, target = VistasDataset(tmp_path, "training")[0]
    np.testing.assert_array_equal(target.numpy(), ids)


def test_grayscale_label_is_ids_and_255_is_ignored(tmp_path):
    _frame(tmp_path, "training", "a")
    ids = _ids(30)
    ids[:10] = 255
    Image.fromarray(ids, mode="L").save(tmp_path / "training" / "labels" / "a.png")
    target = VistasDataset(tmp_path, "training")[0][1].numpy()
    assert (target[:10] == IGNORE_INDEX).all() and (target[10:] == 30).all()


def test_rgb_label_rejected(tmp_path):
    _frame(tmp_path, "training", "a")
    Image.new("RGB", (W, H), CAR).save(tmp_path / "training" / "labels" / "a.png")
    ds = VistasDataset(tmp_path, "training")
    with pytest.raises(DataError, match=r"a\.png.*mode RGB"):
        ds[0]
    assert any("a.png" in p and "RGB" in p for p in check_split(tmp_path, "training"))


def test_config_json_overrides_class_table(tmp_path):
    labels = [
        {"name": "flat--road", "readable": "Road", "color": [128, 64, 128], "evaluate": True},
        {"name": "vehicle--car", "readable": "Car", "color": [0, 0, 142], "evaluate": True},
        {"name": "void--unlabeled", "readable": "Unlabeled", "color": [0, 0, 0], "evaluate": False},
    ]
    (tmp_path / "config.json").write_text(json.dumps({"labels": labels}))
    _frame(tmp_path, "training", "ok", _ids(1))
    _frame(tmp_path, "training", "bad", _ids(5))  # valid in Vistas, past the 3-class table
    ds = VistasDataset(tmp_path, "training")
    assert ds.classes.readable == ("Road", "Car", "Unlabeled") and ds.classes.ignore_index == 2
    assert ds[1][1].unique().tolist() == [1]  # pairs sorted: bad, ok
    with pytest.raises(DataError, match=r"bad\.png.*\[5\]"):
        ds[0]


def test_size_mismatch_and_unreadable_image(tmp_path):
    _frame(tmp_path, "training", "a")
    _label_png(tmp_path / "training" / "labels" / "a.png", np.zeros((H // 2, W // 2), np.uint8))
    _frame(tmp_path, "training", "b", _ids())
    (tmp_path / "training" / "images" / "b.jpg").write_bytes(b"not a jpeg")
    ds = VistasDataset(tmp_path, "training")
    with pytest.raises(DataError, match=r"a\.png.*32x24.*64x48"):
        ds[0]
    with pytest.raises(DataError, match=r"b\.jpg.*unreadable"):
        ds[1]
    problems = check_split(tmp_path, "training")
    assert len(problems) == 2 and "a.png" in problems[0] and "b.jpg" in problems[1]
    assert len(check_split(tmp_path, "training", max_files=1)) == 1


def test_check_split_clean_and_missing_folder(tmp_path):
    _frame(tmp_path, "training", "a", _ids())
    assert check_split(tmp_path, "training") == []
    assert any("validation" in p for p in check_split(tmp_path, "validation"))


def _pair(ids: np.ndarray, rgb: np.ndarray):
    return tv_tensors.Image(torch.from_numpy(rgb).permute(2, 0, 1).contiguous()), tv_tensors.Mask(
        torch.from_numpy(ids.astype(np.int64))
    )


def test_transforms_shapes_dtypes_and_eval_resize():
    rng = np.random.default_rng(0)
    image, mask = _pair(rng.integers(0, 60, (H, W)), rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    x, y = get_transform(True, crop_size=(32, 40))(image, mask)
    assert x.dtype == torch.float32 and x.shape == (3, 32, 40) and y.dtype == torch.int64 and y.shape == (32, 40)
    x, y = get_transform(False)(image, mask)
    assert x.shape == (3, H, W) and torch.equal(y, mask.as_subclass(torch.Tensor))
    # normalization with ImageNet stats: 0 -> -mean/std
    expect = (image[:, 0, 0].float() / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(x[:, 0, 0], expect)
    x, y = get_transform(False, crop_size=(24, 32))(image, mask)
    assert x.shape == (3, 24, 32) and y.shape == (24, 32)
    with pytest.raises(ValueError, match="crop_size"):
        get_transform(True)


def test_random_scale_crop_keeps_only_input_ids_plus_ignore():
    rng = np.random.default_rng(1)
    values = [0, 13, 27, 54, 64]
    ids = rng.choice(values, (H, W))  # pixel noise: any interpolation would create in-between ids
    image, mask = _pair(ids, rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    torch.manual_seed(0)
    t = get_transform(True, crop_size=(40, 56), base_size=48)
    seen = set()
    for _ in range(12):
        seen |= set(t(image, mask)[1].unique().tolist())
    assert seen <= set(values) | {IGNORE_INDEX} and set(values) <= seen
    # scaled to half: the crop must be padded, with the ignore index in the mask
    _, y = get_transform(True, crop_size=(H, W), base_size=H, scale_range=(0.5, 0.5))(image, mask)
    assert (y == IGNORE_INDEX).sum() >= H * W * 3 // 4 - W  # ~3/4 of the crop is padding


def test_flip_moves_image_and_label_together():
    ids = np.full((H, W), 13)
    ids[:, W // 2:] = 27
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:, : W // 2] = (255, 0, 0)
    rgb[:, W // 2:] = (0, 0, 255)
    image, mask = _pair(ids, rgb)
    t = get_transform(True, crop_size=(H, W), base_size=H, scale_range=(1.0, 1.5))
    torch.manual_seed(0)
    flipped = 0
    for _ in range(12):
        x, y = t(image, mask)
        # away from the boundary (bilinear blends there, nearest does not), red <-> 13 and blue <-> 27
        inner = torch.zeros_like(y, dtype=torch.bool)
        inner[:, 3:-3] = (y[:, :-6] == y[:, 6:]) & (y[:, 3:-3] != IGNORE_INDEX)
        red = x[0] > x[2]
        assert torch.equal(red[inner], (y == 13)[inner])
        assert (y == 13).any() and (y == 27).any()
        flipped += int(y[0, 0] == 27)
    assert 0 < flipped < 12  # both orientations were exercised


@pytest.fixture
def fake_synth(monkeypatch):
    """A stand-in seg.synth whose frames carry their render seed in the first 8 red pixels."""

    def render(seed: int, size=(W, H)):
        rgb = np.zeros((size[1], size[0], 3), np.uint8)
        rgb[0, :8, 0] = np.frombuffer(int(seed).to_bytes(8, "little"), np.uint8)
        return Image.fromarray(rgb), np.full((size[1], size[0]), seed % 60, np.uint8)

    mod = types.ModuleType("seg.synth")
    mod.render = render
    mod.frame_seed = lambda split, seed, index: (seed * 1_000_003 + index) * 2 + (split == "validation")
    monkeypatch.setattr(synthetic, "synth", mod)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    return mod


def _seed_of(image) -> int:
    return int.from_bytes(image[0, 0, :8].numpy().astype(np.uint8).tobytes(), "little")


def _take(stream, n):
    it = iter(stream)
    return [_seed_of(next(it)[0]) for _ in range(n)]


def _as_worker(monkeypatch, wid, n):
    monkeypatch.setattr(synthetic, "get_worker_info", lambda: types.SimpleNamespace(id=wid, num_workers=n))


def test_synth_stream_deterministic_and_distinct_per_worker_and_rank(fake_synth, monkeypatch):
    single = _take(SynthStream(size=(16, 8), seed=3), 8)
    assert single == _take(SynthStream(size=(16, 8), seed=3), 8)  # deterministic
    assert len(set(single)) == 8 and all(s % 2 == 0 for s in single)  # training seeds, never validation ones
    assert set(single).isdisjoint(_take(SynthStream(size=(16, 8), seed=4), 8))

    streams = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        for wid in (0, 1):
            _as_worker(monkeypatch, wid, 2)
            streams[rank, wid] = _take(SynthStream(size=(16, 8), seed=3), 2)
    everything = [s for v in streams.values() for s in v]
    assert len(set(everything)) == 8  # no frame shared by two (rank, worker) streams
    assert sorted(everything) == sorted(single)  # together they are the single-process sequence


def test_synth_stream_uses_synth_frame_seed_and_transforms(fake_synth):
    calls = []

    def frame_seed(split, seed, index):
        calls.append((split, seed, index))
        return 1000 + index

    fake_synth.frame_seed = frame_seed
    stream = SynthStream(size=(32, 24), seed=7, transforms=get_transform(True, crop_size=(16, 16)))
    it = iter(stream)
    x, y = next(it)
    next(it)
    assert calls == [("training", 7, 0), ("training", 7, 1)]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64


def test_synth_stream_in_real_dataloader_workers(fake_synth):
    loader = torch.utils.data.DataLoader(SynthStream(size=(16, 8), seed=0), batch_size=None, num_workers=2)
    it = iter(loader)
    seeds = [_seed_of(next(it)[0]) for _ in range(6)]
    del it
    assert sorted(seeds) == sorted(_take(SynthStream(size=(16, 8), seed=0), 6))


def test_synth_pool_holds_the_streams_frames_and_augments_afresh(fake_synth):
    pool = SynthPool(5, size=(16, 8), seed=3, processes=1)
    assert len(pool) == 5 and pool.images.shape == (5, 8, 16, 3) and pool.labels.dtype == np.uint8
    assert [_seed_of(pool[i][0]) for i in range(5)] == _take(SynthStream(size=(16, 8), seed=3), 5)
    pool[0][0][0, 0, 0] = 0  # an item is a copy: changing it leaves the pool intact
    assert _seed_of(pool[0][0]) == _take(SynthStream(size=(16, 8), seed=3), 1)[0]
    aug = SynthPool(2, size=(32, 24), seed=3, processes=1, transforms=get_transform(True, crop_size=(16, 16)))
    draws = {aug[0][0].sum().item() for _ in range(6)}
    assert len(draws) > 1  # random crops/flips/jitter drawn at each access, not once
    with pytest.raises(ValueError, match="at least 1"):
        SynthPool(0, processes=1)


@pytest.mark.slow
def test_synth_pool_renders_the_same_in_spawned_processes():
    one = SynthPool(3, size=(48, 32), seed=5, processes=1)
    two = SynthPool(3, size=(48, 32), seed=5, processes=2)
    assert np.array_equal(one.images, two.images) and np.array_equal(one.labels, two.labels)
    assert len(np.unique(one.labels)) > 3  # real street frames, not blanks


def test_list_images_any_case(tmp_path):
    for name in ("b.JPG", "a.jpeg", "c.PNG", "d.webp", "e.Bmp", "notes.txt", "f.gif", "g.TIFF", "h.json"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.jpg").mkdir()
    # The extensions seg.imageio.load_image reads, in any case; not other files, not folders.
    assert [p.name for p in list_images(tmp_path)] == ["a.jpeg", "b.JPG", "c.PNG", "d.webp", "e.Bmp", "f.gif", "g.TIFF"]
    with pytest.raises(DataError, match="missing"):
        list_images(tmp_path / "missing")
