"""seg.infer.upsample: labels and confidence from low-res logits, the numpy versions (CPU) and the torch-op ones
(the GPU path, checked on the CPU): labels exactly F.interpolate + argmax's, confidence the low-res max softmax
interpolated."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seg.checkpoint import make_checkpoint, save_checkpoint
from seg.classes import VISTAS
from seg.model import create_model
from seg.infer.predictor import Predictor
from seg.infer.upsample import upsample_argmax, upsample_argmax_t, upsample_confidence


@pytest.mark.parametrize("low_hw,size", [((3, 4), (48, 64)), ((24, 79), (384, 1264)), ((6, 6), (6, 6)),
                                         ((4, 5), (17, 3)), ((1, 1), (5, 9))])
def test_torch_upsample_argmax_is_exact(low_hw, size):
    torch.manual_seed(0)
    low = torch.randn(1, 66, *low_hw).contiguous(memory_format=torch.channels_last)
    ref = F.interpolate(low, size, mode="bilinear", align_corners=False).argmax(1)[0].numpy()
    got = upsample_argmax_t(low, size)
    assert got.dtype == torch.uint8 and tuple(got.shape) == size and got.device == low.device
    assert (got.numpy() == ref).mean() > 0.999  # float ties only
    assert (got.numpy() == upsample_argmax(low, size)).mean() > 0.999


def test_label_upsample_agrees_with_plain_pipeline_on_a_real_model(tmp_path):
    """The plain torchvision pipeline: the model's own forward (all logits upsampled), then argmax."""
    torch.manual_seed(0)
    arch = "lraspp_plus_mobilenet_v3_large"
    path = tmp_path / "m.pt"
    save_checkpoint(path, make_checkpoint(create_model(arch, VISTAS.num_classes).eval(), arch, VISTAS, (96, 128)))
    pred = Predictor(path, device="cpu", backend="torch", precision="fp32")
    x = torch.randn(1, 3, 96, 128).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        plain = pred.model(x).argmax(1)[0].numpy()
        got = upsample_argmax_t(pred.forward(x), (96, 128)).numpy()
    assert (got == plain).mean() >= 0.995


def test_confidence_is_low_res_max_softmax_upsampled():
    torch.manual_seed(1)
    low = torch.randn(2, 7, 5, 6) * 3
    conf = upsample_confidence(low, (20, 24))
    ref = F.interpolate(torch.softmax(low, 1).amax(1, keepdim=True), (20, 24), mode="bilinear", align_corners=False)[:, 0]
    assert conf.shape == (2, 20, 24) and conf.dtype == torch.float32
    torch.testing.assert_close(conf, ref, rtol=1e-5, atol=1e-6)
    assert float(conf.min()) >= 1 / 7 - 1e-6 and float(conf.max()) <= 1 + 1e-6
    same = upsample_confidence(low, (5, 6))  # at the logits' own size: no interpolation at all
    torch.testing.assert_close(same, torch.softmax(low, 1).amax(1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("classes", [2, 3, 66])
def test_numpy_upsample_argmax_on_smooth_logits(classes):
    """Smooth logit fields (like a network's): most boundary pixels are settled by the corners' own classes
    and the bound; the rest by mixing all channels. Either way the labels are F.interpolate's."""
    g = torch.Generator().manual_seed(classes)
    low = F.interpolate(torch.randn(1, classes, 6, 8, generator=g) * 4, (24, 32), mode="bilinear", align_corners=False)
    low = low + 0.3 * torch.randn(low.shape, generator=g)
    for size in ((96, 128), (97, 130), (24, 32)):
        ref = F.interpolate(low, size, mode="bilinear", align_corners=False).argmax(1)[0].numpy()
        got = upsample_argmax(low, size)
        assert got.shape == size and (got == ref).mean() > 0.9999


def test_first_argmax_takes_the_first_of_tied_maxima():
    from seg.infer.upsample import first_argmax

    g = torch.Generator().manual_seed(3)
    values = torch.randn(66, 500, generator=g).numpy()
    values[[5, 40], 7] = values[:, 7].max() + 1  # a tie: 5 comes first
    values[[60, 2, 9], 8] = values[:, 8].max() + 1  # 2 comes first
    values[:, 9] = 0.25  # all equal: 0
    got = first_argmax(values)
    assert got.dtype == np.uint8 and (got == values.argmax(0)).all()
    assert (got[7], got[8], got[9]) == (5, 2, 0)
    values[[3, 30], 11] = np.nan  # a NaN: argmax's answer (the first NaN), not an id past the table
    assert first_argmax(values)[11] == values[:, 11].argmax(0) == 3


@pytest.mark.parametrize("low_hw,size", [((5, 6), (20, 24)), ((24, 79), (96, 316)), ((4, 4), (4, 4)), ((3, 7), (10, 5))])
def test_numpy_confidence_map_equals_the_torch_one(low_hw, size):
    from seg.infer.upsample import confidence_map

    low = torch.randn(1, 9, *low_hw, generator=torch.Generator().manual_seed(4)) * 3
    got = confidence_map(low, size)
    assert got.shape == size and got.dtype == np.float32
    np.testing.assert_allclose(got, upsample_confidence(low, size)[0].numpy(), rtol=1e-5, atol=1e-6)
