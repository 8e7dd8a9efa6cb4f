"""seg.model: the registry builds every model offline, LR-ASPP+ predicts at 1/4 resolution, and a logit
bias folded into the output conv shifts every pixel's logits by exactly that bias."""
import pytest
import torch

from seg.model import add_logit_bias, create_model, list_models, output_conv


def test_registry_names_and_unknown_name():
    assert {"deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large", "lraspp_plus_mobilenet_v3_large",
            "deeplabv3_resnet50", "deeplabv3_resnet101"} <= set(list_models())
    with pytest.raises(ValueError, match="lraspp_plus_mobilenet_v3_large"):
        create_model("nope", 5)


def test_lraspp_plus_reads_three_levels_and_classifies_at_quarter_resolution():
    torch.manual_seed(0)
    model = create_model("lraspp_plus_mobilenet_v3_large", 7).eval()
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        feats = model.net.backbone(x)
        assert {k: tuple(v.shape[-2:]) for k, v in feats.items()} == {
            "quarter": (24, 32), "low": (12, 16), "high": (6, 8)}
        low = model.net.classifier(feats)
        out = model(x)
    assert low.shape == (1, 7, 24, 32) and out.shape == (1, 7, 96, 128)
    torch.testing.assert_close(out, torch.nn.functional.interpolate(low, (96, 128), mode="bilinear"))
    # the 1/4 features reach the logits: changing them changes the prediction
    feats["quarter"] = feats["quarter"] + 1
    with torch.no_grad():
        assert (model.net.classifier(feats) - low).abs().max() > 1e-3


@pytest.mark.parametrize("arch", ["lraspp_mobilenet_v3_large", "lraspp_plus_mobilenet_v3_large",
                                  "deeplabv3_mobilenet_v3_large"])
def test_logit_bias_shifts_every_pixel_by_the_bias(arch):
    torch.manual_seed(0)
    model = create_model(arch, 5).eval()
    x = torch.randn(1, 3, 64, 64)
    bias = torch.tensor([0.5, -1.0, 0.0, 2.0, -0.25])
    with torch.no_grad():
        before = model(x)
        add_logit_bias(model, bias)
        after = model(x)
    torch.testing.assert_close(after - before, bias.view(1, 5, 1, 1).expand_as(before), atol=1e-5, rtol=0)
    assert output_conv(model).out_channels == 5
    with pytest.raises(ValueError, match="shape"):
        add_logit_bias(model, torch.zeros(4))
