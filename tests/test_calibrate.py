"""seg.calibrate: class weights favour rare classes, the logit adjustment undoes them in proportion, and
batch-norm recalibration replaces stale running statistics."""
import pytest
import torch

from seg.calibrate import class_weights, logit_adjustment, recalibrate_bn


def test_class_weights_favour_rare_classes(tiny_vistas):
    from seg.data import VistasDataset
    ds = VistasDataset(tiny_vistas, "training")
    w = class_weights(ds, 66, 65, samples=8, device="cpu")
    # road and sky cover most pixels, the car a small box: rarer class, larger weight
    assert w[55] > w[13] and w[55] > w[27]
    counts = torch.zeros(66)
    for _, t in (ds[i] for i in range(len(ds))):
        counts += torch.bincount(t.reshape(-1), minlength=66).float()
    freq = counts / counts.sum()
    assert float((w * freq).sum()) == pytest.approx(1.0, rel=1e-4)  # pixel-weighted mean weight is 1
    assert float(w.max()) <= 10.0 + 1e-6


def test_recalibrate_bn_replaces_stale_statistics():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    bn = model[1]
    bn.running_mean.fill_(100.0)  # stale statistics from "earlier weights"
    batches = [(torch.randn(2, 3, 8, 8) + i, None) for i in range(3)]
    assert recalibrate_bn(model, iter(batches), "cpu") == 3
    with torch.no_grad():
        expect = torch.stack([model[0](x).mean((0, 2, 3)) for x, _ in batches]).mean(0)
    assert torch.allclose(bn.running_mean, expect, atol=1e-5)  # cumulative average of the batch means
    assert bn.momentum == 0.1  # restored afterwards


def test_logit_adjustment_undoes_weights_in_proportion():
    w = torch.tensor([1.0, 4.0, 0.25, 0.0])
    adj = logit_adjustment(w, 1.0)
    torch.testing.assert_close(adj, torch.tensor([0.0, -torch.log(torch.tensor(4.0)), torch.log(torch.tensor(4.0)), 0.0]))
    torch.testing.assert_close(logit_adjustment(w, 0.5), adj * 0.5)
