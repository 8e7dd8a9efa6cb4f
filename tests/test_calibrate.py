"""seg.calibrate: class weights favour rare classes, the logit adjustment undoes them in proportion,
batch-norm recalibration replaces stale running statistics, and the held-out bias fit finds the offsets
that maximise mIoU."""
import pytest
import torch

from seg.train.calibrate import (class_weights, fit_logit_bias, heldout_scores, logit_adjustment, miou_with_bias,
                           recalibrate_bn)
from seg.evaluate.metrics import ConfusionMatrix


def test_class_weights_favour_rare_classes(tiny_vistas):
    from seg.data.vistas import VistasDataset
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


def _biased_problem(n=6000, seed=0):
    """Scores whose labels are argmax(scores + true offset): the fit should find that offset."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(n, 4, generator=g)
    true = torch.tensor([0.0, 1.0, -0.5, 0.0])
    return scores, (scores + true).argmax(1), true


def test_fit_logit_bias_recovers_the_offset_that_makes_predictions_right():
    scores, labels, true = _biased_problem()
    labels[:600] = 3  # class 3 is the ignore index here: those pixels count for nothing
    bias, before, after = fit_logit_bias(scores, labels, ignore_index=3)
    assert before < 0.6 and after == 1.0
    torch.testing.assert_close(bias, true)
    assert miou_with_bias(scores, labels, bias, 3) == after


def test_fit_logit_bias_never_lowers_the_score_and_ignores_ignored_pixels():
    scores, labels, _ = _biased_problem(seed=1)
    plain = fit_logit_bias(scores, labels, ignore_index=3)
    # extra ignored pixels with scores that would favour any class change nothing
    extra = torch.randn(3000, 4) * 5
    more = fit_logit_bias(torch.cat([scores, extra]), torch.cat([labels, torch.full((3000,), 3)]), ignore_index=3)
    torch.testing.assert_close(more[0], plain[0])
    assert more[1:] == plain[1:] and plain[2] >= plain[1]
    # already right: nothing to gain, nothing moves
    right = (scores).argmax(1)
    bias, before, after = fit_logit_bias(scores, right, ignore_index=None)
    assert before == after == 1.0 and not bias.any()


def test_miou_with_bias_matches_the_evaluation_confusion_matrix():
    g = torch.Generator().manual_seed(2)
    scores, labels = torch.randn(5000, 6, generator=g), torch.randint(0, 6, (5000,), generator=g)
    bias = torch.tensor([0.0, 0.3, -0.2, 0.0, 0.5, 0.0])
    cm = ConfusionMatrix(6, ignore_index=5)
    cm.update(labels, (scores + bias).argmax(1))
    assert miou_with_bias(scores, labels, bias, 5) == pytest.approx(cm.compute()["miou"], abs=1e-9)


def test_heldout_scores_pair_each_sampled_logit_with_the_label_at_its_pixel():
    class Coordinates(torch.nn.Module):  # "logits" = the pixel's row and column, and a constant
        def forward(self, x):
            return x

    h, w = 12, 16
    rows, cols = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    image = torch.stack([rows, cols, torch.ones(h, w)])
    target = (rows * w + cols).long()  # a different label at every pixel
    scores, labels = heldout_scores(Coordinates(), [(image, target), (image, target)], "cpu", every=4, seed=0)
    assert scores.shape == (2 * h * w // 4, 3) and labels.shape == (2 * h * w // 4,)
    torch.testing.assert_close((scores[:, 0] * w + scores[:, 1]).long(), labels)
    assert len(set(labels[: h * w // 4].tolist())) == h * w // 4  # distinct pixels within a frame
