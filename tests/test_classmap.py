"""seg.classmap: the lanes mapping reads class names (not ids), keeps the ignore class ignored, and a tiny
`--classes lanes` run gives a 2-class checkpoint that the Predictor, seg.evaluate and the app accept."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from appstandins import make_standins, no_legacy_pages_dir
from conftest import write_vistas
from seg.checkpoint import load_checkpoint, model_from_checkpoint
from seg.classes import IGNORE_INDEX, VISTAS, ClassTable
from seg.classmap import LANES, VOID, MapTarget, get_classmap, truth_for_model
from seg.data.vistas import VistasDataset
from seg.evaluate import evaluate
from seg.evaluate.metrics import ConfusionMatrix
from seg.infer.predictor import Predictor
from seg.model import output_conv
from seg.paths import REPO_ROOT
from seg.train.main import cli
from webapp import views
from webapp.scores import ValScores

GENERAL, ZEBRA, ROAD = VISTAS.index("Lane Marking - General"), VISTAS.index("Lane Marking - Crosswalk"), 13
FAST = ["--arch", "lraspp_mobilenet_v3_large", "--size", "64x48", "--batch-size", "2", "--workers", "0",
        "--threads", "1"]


def test_lanes_on_the_vistas_table():
    cm = get_classmap("lanes", VISTAS)
    assert cm.table == LANES and cm.table.num_classes == 2
    assert np.flatnonzero(cm.lut == 1).tolist() == sorted([GENERAL, ZEBRA])
    assert cm.lut[IGNORE_INDEX] == VOID and cm.lut[255] == VOID  # Unlabeled and "no label" stay ignored
    assert (cm.lut[: len(VISTAS)] == 0).sum() == len(VISTAS) - 3  # every other class is Rest
    assert cm.lut[VISTAS.index("Crosswalk - Plain")] == 0  # a crossing's surface is not paint


def test_lanes_maps_by_name_whatever_the_ids():
    # A v2.0-style table in another order: several marking classes, Unlabeled not last-but-one.
    table = ClassTable(
        names=("marking-only--discrete--text", "nature--sky", "void--unlabeled", "construction--flat--road",
               "marking--continuous--solid"),
        readable=("Lane Marking (only) - Text", "Sky", "Unlabeled", "Road", "Lane Marking - Continuous Solid"),
        colors=((1, 1, 1),) * 5, ignore_index=2)
    cm = get_classmap("lanes", table)
    assert cm.lut[:5].tolist() == [1, 0, VOID, 0, 1]
    ids = np.array([[0, 1, 2], [3, 4, 255]], np.uint8)
    assert cm(ids).tolist() == [[1, 0, VOID], [0, 1, VOID]]
    assert cm(torch.from_numpy(ids)).tolist() == [[1, 0, VOID], [0, 1, VOID]]


def test_unknown_mapping_and_table_without_markings_are_clear_errors():
    with pytest.raises(ValueError, match="known: lanes"):
        get_classmap("roads", VISTAS)
    plain = ClassTable(("nature--sky", "construction--flat--road"), ("Sky", "Road"), ((0, 0, 0),) * 2, None)
    with pytest.raises(ValueError, match="no lane-marking class"):
        get_classmap("lanes", plain)


def test_map_target_runs_after_the_transforms_so_padding_stays_ignored():
    def pad(image, target):  # what RandomCrop's padding does: fill with the source table's ignore id
        return image, torch.nn.functional.pad(target, (0, 1), value=IGNORE_INDEX)

    image, target = MapTarget(pad, get_classmap("lanes", VISTAS))(None, torch.tensor([[ROAD, GENERAL]]))
    assert target.tolist() == [[0, 1, VOID]]


def test_confusion_matrix_with_the_ignore_id_past_the_table():
    cm = ConfusionMatrix(2, VOID)
    cm.update(np.array([0, 0, 1, 1, VOID, VOID]), np.array([0, 1, 1, 1, 1, 0]))
    r = cm.compute()
    assert cm.mat.tolist() == [[1, 1], [0, 2]]
    assert r["iou"].tolist() == pytest.approx([1 / 2, 2 / 3]) and r["miou"] == pytest.approx(7 / 12)


def write_marked(root):
    """write_vistas frames with a lane line, a zebra block and an Unlabeled strip painted into the labels."""
    write_vistas(root, n_train=6, n_val=3)
    for lbl in sorted(root.glob("*/labels/*.png")):
        ids = np.array(Image.open(lbl))
        h, w = ids.shape
        ids[h * 3 // 4:, w // 2 - 1: w // 2 + 1] = GENERAL
        ids[h - 6: h - 2, 4:14:3] = ZEBRA
        ids[:, -3:] = IGNORE_INDEX
        im = Image.fromarray(ids, "P")
        im.putpalette(VISTAS.flat_palette())
        im.save(lbl)
    return root


@pytest.fixture(scope="module")
def lanes_run(tmp_path_factory):
    root = write_marked(tmp_path_factory.mktemp("data") / "vistas")
    out = tmp_path_factory.mktemp("run") / "lanes"
    # class weights and the bias fit both meet the ignore id 255 of the 2-class table
    code = cli([str(a) for a in ("--data", root, "--classes", "lanes", "--out", out, "--steps", 2,
                                   "--eval-every", 2, "--class-weights", "sqrt-inv", "--bias-fit", 2,
                                   "--bias-fit-data", root, *FAST)])
    assert code == 0
    return root, out


def test_lanes_run_writes_a_two_class_checkpoint(lanes_run):
    root, out = lanes_run
    ckpt = load_checkpoint(out / "model.pt")
    assert ckpt["model_args"]["num_classes"] == 2 and ckpt["classmap"] == "lanes"
    assert ClassTable.from_dict(ckpt["classes"]) == LANES
    assert output_conv(model_from_checkpoint(ckpt)).out_channels == 2
    log = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("val_miou" in r for r in log) and any("bias_fit" in r for r in log)


def test_predict_and_evaluate_accept_the_lanes_checkpoint(lanes_run):
    root, out = lanes_run
    pred = Predictor(out / "model.pt", precision="fp32")
    assert pred.classes == LANES and pred.meta["classmap"] == "lanes"
    img = np.asarray(Image.open(sorted((root / "validation" / "images").iterdir())[0]).convert("RGB"))
    assert set(np.unique(pred.predict(img)).tolist()) <= {0, 1}

    r = evaluate(pred, root)
    assert r["classmap"] == "lanes" and set(r["per_class_iou"]) == {"Rest", "Lane Marking"}
    truth = [np.array(Image.open(p)) for p in sorted((root / "validation" / "labels").iterdir())]
    mapped = np.concatenate([get_classmap("lanes", VISTAS)(t).ravel() for t in truth])
    mat = np.array(r["confusion"])  # rows: the dataset's labels mapped by name; Unlabeled left out
    assert mat.sum(1).tolist() == [int((mapped == 0).sum()), int((mapped == 1).sum())]


class AllGeneral:
    """A 66-class stand-in that paints Lane Marking - General everywhere."""

    classes = VISTAS

    def predict(self, image):
        return np.full(image.shape[:2], GENERAL, np.uint8)


def test_evaluate_scores_a_66_class_model_as_lanes(lanes_run):
    root, _ = lanes_run
    r = evaluate(AllGeneral(), root, classmap="lanes")
    truth = np.concatenate([get_classmap("lanes", VISTAS)(np.array(Image.open(p))).ravel()
                            for p in sorted((root / "validation" / "labels").iterdir())])
    kept = truth[truth != VOID]
    assert r["per_class_iou"]["Lane Marking"] == pytest.approx((kept == 1).sum() / kept.size)
    assert r["per_class_iou"]["Rest"] == 0.0


def test_app_scores_of_the_lanes_checkpoint_equal_evaluate(lanes_run):
    """The Validation page's per-frame store folds the dataset's labels the way seg.evaluate does."""
    root, out = lanes_run
    pred = Predictor(out / "model.pt", precision="fp32")
    ds = VistasDataset(root, "validation")
    store = ValScores(ds, pred.classes, pred.meta["classmap"])
    for i in store.missing(len(ds)):
        store.score(pred, i)
    got, ref = store.result(len(ds)), evaluate(pred, root)
    assert got["confusion"] == ref["confusion"] and got["miou"] == pytest.approx(ref["miou"])
    with pytest.raises(ValueError, match="predicts 2"):  # without the mapping the tables differ
        ValScores(ds, pred.classes)


def test_truth_for_model():
    ids = np.array([[ROAD, GENERAL, IGNORE_INDEX]], np.uint8)
    assert truth_for_model(ids, VISTAS, None) is ids
    assert truth_for_model(ids, VISTAS, "lanes").tolist() == [[0, 1, VOID]]


def test_app_validation_page_with_the_lanes_checkpoint(lanes_run, tmp_path, monkeypatch):
    no_legacy_pages_dir(monkeypatch)
    root, out = lanes_run
    (tmp_path / "runs").mkdir()
    for k, v in {"SEG_CHECKPOINT": out / "model.pt", "SEG_DATA": root, "SEG_RUNS": tmp_path / "runs"}.items():
        monkeypatch.setenv(k, str(v))
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/validation.py").run()
    assert not at.exception, at.exception  # ground truth in 66-class ids would index past the 2-class table
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["mIoU"] == f"{evaluate(Predictor(out / 'model.pt'), root)['miou']:.1%}"
    legends = "\n".join(str(m.value) for m in at.markdown)
    assert "Rest" in legends and "Road" not in legends and "Sky" not in legends  # rows drawn in lanes classes


@pytest.mark.slow
def test_app_ab_mode_compares_the_lanes_model_with_a_66_class_model(lanes_run, tmp_path, monkeypatch):
    """A/B: the 66-class model is folded into the lanes classes; both splits' scores equal seg.evaluate's,
    and Inference shows both models and where they disagree."""
    no_legacy_pages_dir(monkeypatch)
    root, out = lanes_run
    env = make_standins(tmp_path / "s", n_samples=1)
    for k, v in {"SEG_CHECKPOINT": out / "model.pt", "SEG_DATA": root, "SEG_RUNS": env["SEG_RUNS"],
                 "SEG_SAMPLES": env["SEG_SAMPLES"]}.items():
        monkeypatch.setenv(k, str(v))
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=180)
    at.run()
    (b,) = [s for s in at.sidebar.selectbox if s.label == "Compare with (A/B)"]
    assert "demo · model.pt" in b.options
    b.set_value("demo · model.pt").run()
    at.switch_page("pages/validation.py").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    ref_a = evaluate(Predictor(out / "model.pt"), root)
    ref_b = evaluate(Predictor(env["SEG_CHECKPOINT"]), root, classmap="lanes")
    assert metrics["mIoU · lanes"] == f"{ref_a['miou']:.1%}" and metrics["mIoU · demo"] == f"{ref_b['miou']:.1%}"
    table = at.dataframe[0].value
    assert set(table["Class"]) == {"Rest", "Lane Marking"}
    row = table[table["Class"] == "Lane Marking"].iloc[0]
    assert row["B"] == pytest.approx(ref_b["per_class_iou"]["Lane Marking"])
    assert row["B − A"] == pytest.approx(row["B"] - row["A"])
    assert "A → B" in "\n".join(str(e.value) for e in at.caption)  # each frame's classes, both IoUs
    assert any("A and B disagree on" in c for c in _image_captions(at))
    assert "original | A | B | ground truth" in "\n".join(str(e.value) for e in at.caption)
    # Sorted by B's frame mIoU minus A's, B's worst frame first: the order the two scorings give.
    (order,) = [s for s in at.selectbox if s.label == "Sort"]
    order.set_value("B - A mIoU: B loses most first").run()
    assert not at.exception, at.exception
    per_frame = {}
    for line in (str(m.value) for m in at.markdown):
        m = re.match(r"\*\*(\S+)\*\* &nbsp; mIoU A ([\d.]+)% · B ([\d.]+)%", line)
        if m:
            per_frame[m.group(1)] = float(m.group(3)) - float(m.group(2))
    shown = list(per_frame)
    assert len(shown) >= 2 and [per_frame[k] for k in shown] == sorted(per_frame.values())
    (b,) = [s for s in at.sidebar.selectbox if s.label == "Compare with (A/B)"]
    b.set_value(None).run()  # A/B off with an A/B sort chosen: the page falls back to a plain order
    assert not at.exception, at.exception
    (order,) = [s for s in at.selectbox if s.label == "Sort"]
    assert order.value in views.SORT_ORDERS
    b.set_value("demo · model.pt").run()

    at.switch_page("pages/inference.py").run()
    assert not at.exception, at.exception
    assert "B · demo" in "\n".join(str(e.value) for e in at.caption)
    assert any("A and B disagree on" in c for c in _image_captions(at))


def _image_captions(at) -> list[str]:
    found = []

    def walk(node):
        if getattr(node, "type", None) == "image":
            found.extend(img.caption for img in node.proto.imgs)
        for child in (getattr(node, "children", None) or {}).values():
            walk(child)

    walk(at._tree)
    return found


def test_init_from_a_66_class_model_keeps_all_but_the_class_logits(lanes_run, tmp_path, capsys):
    root, _ = lanes_run
    src_dir, dst = tmp_path / "full", tmp_path / "lanes"
    assert cli([str(a) for a in ("--data", root, "--out", src_dir, "--steps", 1, "--eval-every", 1, *FAST)]) == 0
    # lr 0: every parameter stays where --init put it
    assert cli([str(a) for a in ("--data", root, "--classes", "lanes", "--out", dst, "--steps", 1, "--eval-every", 1,
                                   "--lr", 0, "--init", src_dir / "model.pt", *FAST)]) == 0
    assert "66 classes -> 2" in capsys.readouterr().err
    src, got = load_checkpoint(src_dir / "model.pt"), load_checkpoint(dst / "last.pt")
    fresh = {n for n, v in got["model"].items() if v.shape != src["model"][n].shape}
    assert fresh and all(got["model"][n].shape[0] == 2 for n in fresh)  # only the class-logit convs differ
    assert output_conv(model_from_checkpoint(got)).out_channels == 2
    for n, v in src["model"].items():
        if n not in fresh and "running_" not in n and "num_batches" not in n:  # BN statistics move in training
            assert torch.equal(got["model"][n].half(), v.half()), n
    assert cli([str(a) for a in ("--data", root, "--classes", "lanes", "--out", tmp_path / "x", "--steps", 1,
                                   *FAST[2:], "--arch", "deeplabv3_mobilenet_v3_large",
                                   "--init", src_dir / "model.pt")]) == 1
    assert "--init needs a deeplabv3_mobilenet_v3_large" in capsys.readouterr().err
