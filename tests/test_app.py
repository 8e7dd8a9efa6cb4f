"""The Streamlit app through AppTest: every page renders on stand-in data, key widgets exist, the
inference and validation paths run, and sidebar paths outside the allowed folders are refused."""
from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.elements.lib.file_uploader_utils import enforce_filename_restriction, normalize_upload_file_type

from appstandins import make_standins, no_legacy_pages_dir, run_app, write_run
from seg.classes import VISTAS
from seg.data.vistas import VistasDataset
from seg.device import cpu_name
from seg.evaluate import evaluate
from seg.infer.predictor import Predictor
from seg.paths import REPO_ROOT
from seg.train import runlog
from webapp import config as appconfig
from webapp import figures, ui, views



@pytest.fixture(autouse=True)
def _apptest_navigation(monkeypatch):
    no_legacy_pages_dir(monkeypatch)


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    """Point the app at tmp stand-ins through the environment for this module, then restore it."""
    env = make_standins(tmp_path_factory.mktemp("app"))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _texts(at) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "error", "warning", "info") for e in getattr(at, kind))


def test_home_shows_checkpoint_and_sources(standins):
    at = run_app()
    metrics = {m.label: m.value for m in at.metric}
    assert "lraspp_mobilenet_v3_large" in _texts(at)
    assert metrics["Classes in its table"] == "66" and metrics["Training steps"] == "200"
    assert metrics["Best val mIoU (training)"] == "25.0%"  # the stand-in stores only best_miou
    assert "3 runs found" not in _texts(at) and "2 runs found" in _texts(at)
    assert [t.key for t in at.sidebar.text_input] == ["src_checkpoint", "src_data", "src_runs"]


def test_home_says_what_was_trained_on_what_and_times_this_machine(standins):
    at = run_app()
    texts = _texts(at)
    # read from the stand-in checkpoint's recorded args: --data synth, --eval-limit 32
    # --eval-limit 32 over the bundled validation split of 32 frames: all of them (issue 24, item 22)
    assert "Trained on** the synthetic street world" in texts and "all 32 of its frames" in texts
    assert "Expect much worse results on real photos" in texts
    ds = VistasDataset(standins["SEG_DATA"], "validation")
    ids = set()
    for _, lbl in ds.pairs:
        ids |= set(np.unique(np.asarray(Image.open(lbl))).tolist())
    ids.discard(ds.classes.ignore_index)
    assert f"{len(ids)} classes have pixels in the labels of {len(ds)} frames" in texts
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Device"] == "CPU" and metrics["Precision"] in ("fp32", "bf16")
    import onnxruntime  # noqa: F401 - installed, so auto picks it on the CPU
    assert metrics["Backend"] == "onnxruntime"
    assert float(metrics["ms per 128×96 frame"]) > 0  # the stand-in's input size, timed here
    assert cpu_name() in texts


def test_sidebar_names_a_file_that_is_not_a_checkpoint(standins):
    at = run_app()
    at.sidebar.text_input(key="src_checkpoint").set_value("README.md")
    at.run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any("README.md: not a checkpoint" in e for e in errors) and not any("unsafe" in e for e in errors)


@pytest.mark.slow  # loads and exports a second model (the bundled one)
def test_sidebar_model_chooser_lists_checkpoints_by_name_and_fills_the_path(standins):
    at = run_app()
    (pick,) = [s for s in at.sidebar.selectbox if s.label == "Model"]
    assert pick.value == "demo · model.pt"  # the standin run's checkpoint, the one the app starts with
    assert "demo (bundled)" in pick.options and "sweep/lr-high · model.pt" not in pick.options  # no checkpoint there
    pick.set_value("demo (bundled)").run()
    assert not at.exception, at.exception
    assert at.sidebar.text_input(key="src_checkpoint").value == "checkpoints/demo/model.pt"
    assert "checkpoints/demo/model.pt" in _texts(at)  # Home names the file now loaded
    (pick,) = [s for s in at.sidebar.selectbox if s.label == "Model"]
    assert pick.value == "demo (bundled)"
    at.sidebar.text_input(key="src_checkpoint").set_value(standins["SEG_CHECKPOINT"]).run()
    (pick,) = [s for s in at.sidebar.selectbox if s.label == "Model"]
    assert pick.value == "demo · model.pt"  # a typed path shows which found checkpoint it is


def test_training_page_lists_runs_and_reacts_to_settings(standins):
    at = run_app("training")
    runs = at.multiselect(key="train_runs")
    assert set(runs.options) >= {"demo", "sweep/lr-high"} and set(runs.value) >= {"demo", "sweep/lr-high"}
    at.slider(key="train_smoothing").set_value(0.9)
    at.toggle(key="train_log").set_value(True)
    at.radio(key="train_x").set_value("time")
    at.run()
    assert not at.exception, at.exception
    summary = at.dataframe[0].value
    assert set(summary["run"]) >= {"demo", "sweep/lr-high"}
    assert summary.set_index("run").loc["demo", "steps"] == 200
    # the demo stand-in ends with both calibration steps (as does the bundled run); the sweep run has none
    assert len(at.dataframe) == 2
    calib = at.dataframe[1].value
    assert "sweep/lr-high" not in set(calib["run"])
    demo = calib[calib["run"] == "demo"]
    assert list(demo["stage"]) == ["trained", "logit adjustment", "bias fit"]
    assert list(demo["val_miou"].round(6)) == [30.0, 33.0, 36.0]


def test_training_status_comes_from_the_log(standins, tmp_path):
    root = Path(standins["SEG_DATA"]) / "status_runs"  # under an allowed folder, away from the runs folder
    for name in ("finished", "cut", "garbled"):
        write_run(root / name, steps=60)
    with open(root / "finished" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 60, "end": "done"}) + "\n")
    with open(root / "cut" / "metrics.jsonl", "a") as f:
        f.write('{"step": 80, "loss": 0.')  # killed mid-line, no end record
    old = time.time() - 3600
    os.utime(root / "cut" / "metrics.jsonl", (old, old))
    lines = (root / "garbled" / "metrics.jsonl").read_text().splitlines()
    lines[1] = "#### not json"
    (root / "garbled" / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    at = run_app("training")
    at.sidebar.text_input(key="src_runs").set_value(str(root))
    at.run()
    at.multiselect(key="train_runs").set_value(["finished", "cut", "garbled"])
    at.run()
    assert not at.exception, at.exception
    status = at.dataframe[0].value.set_index("run")["status"]
    assert status["finished"] == "finished" and status["cut"] == "stopped mid-run (no end record)"
    assert status["garbled"] == "live"  # written just now, no end record
    assert any("skipped 1 broken line (line 2)" in w.value for w in at.warning)


def test_inference_page_segments_a_sample_frame(standins):
    at = run_app("inference")
    assert at.multiselect(key="inf_samples").value == ["kitti_000000.png"]
    assert "1242×375 px" in _texts(at) and not at.error
    for key in ("inf_alpha", "inf_threshold"):
        at.slider(key=key)
    assert "inference" in _texts(at) and "%</span>" in _texts(at)  # timing caption, legend chips with shares
    # input | map as images, the overlay in the hover inspector; one frame: no "Download all"
    assert len(at.get("image")) == 2 and len(at.get("download_button")) == 2
    at.toggle(key="inf_conf").set_value(True).run()  # the threshold is live only with Confidence on
    at.slider(key="inf_threshold").set_value(0.9)
    at.button_group(key="inf_view").set_value("Overlay")
    at.run()
    assert not at.exception and not at.error
    assert len(at.get("image")) == 1  # the confidence view; the overlay is in the inspector
    at.multiselect(key="inf_samples").set_value(["kitti_000000.png", "kitti_000001.png"])
    at.run()
    assert not at.exception and len(at.get("download_button")) == 5  # 2 per frame + "Download all"


def test_inference_states_one_pixel_limit_and_names_synthetic_samples(standins, monkeypatch):
    at = run_app("inference")
    label = at.get("file_uploader")[0].proto.label
    assert f"{views.MAX_UPLOAD_PIXELS / 1e6:g} million pixels" in label and "25 MB" in label
    assert f"({', '.join(views.UPLOAD_TYPES)};" in label  # the types named are the types taken
    assert "synthetic" not in at.multiselect(key="inf_samples").label  # the stand-in samples are not bundled
    monkeypatch.delenv("SEG_SAMPLES")  # the bundled samples: synthetic renders
    at = run_app("inference")
    assert "synthetic" in at.multiselect(key="inf_samples").label and not at.error
    assert "not how it does on real dashcam photos" in _texts(at)


def test_inference_controls_that_do_nothing_are_off_and_views_are_named(standins):
    at = run_app("inference")
    assert at.slider(key="inf_threshold").disabled and not at.slider(key="inf_alpha").disabled  # Confidence off
    assert "Side by side" not in at.button_group(key="inf_view").options  # wide frames are stacked, not side by side
    at.toggle(key="inf_conf").set_value(True)
    at.button_group(key="inf_view").set_value("Mask only").run()
    assert not at.exception and not at.slider(key="inf_threshold").disabled and at.slider(key="inf_alpha").disabled


def test_a_view_change_does_not_rerun_the_network(standins, monkeypatch):
    calls = []
    real = Predictor.predict_full
    monkeypatch.setattr(Predictor, "predict_full", lambda self, img: calls.append(1) or real(self, img))
    ui.pixel_cache().clear()
    at = run_app("inference")
    assert len(calls) == 1  # the one sample frame
    at.button_group(key="inf_view").set_value("Mask only").run()
    at.toggle(key="inf_conf").set_value(True).run()
    at.slider(key="inf_threshold").set_value(0.8).run()
    at.toggle(key="inf_outline").set_value(True).run()
    at.button_group(key="inf_view").set_value("Overlay").run()
    at.slider(key="inf_alpha").set_value(0.3).run()
    assert not at.exception and len(calls) == 1


def test_own_frames_carry_the_synthetic_model_caveat_and_bundled_clips_say_synthetic(standins, monkeypatch):
    at = run_app("inference")  # the stand-in samples folder is the user's own; the model trained on synth
    assert "trained only on the synthetic street world" in _texts(at)
    monkeypatch.delenv("SEG_SAMPLES")  # the bundled samples: synthetic renders, their clip too
    at = run_app("inference")
    assert "synthetic" in at.multiselect(key="inf_clips").label
    assert "trained only on the synthetic street world" not in _texts(at)  # the sample says so itself


def test_ab_mode_offers_b_downloads_and_zips_them(standins):
    at = run_app()
    (b,) = [s for s in at.sidebar.selectbox if s.label == "Compare with (A/B)"]
    b.set_value("demo (bundled)").run()
    at.switch_page("pages/inference.py").run()
    assert not at.exception, at.exception
    labels = [d.proto.label for d in at.get("download_button")]
    assert "Label map of B (PNG)" in labels and "Overlay of B (PNG)" in labels
    at.multiselect(key="inf_samples").set_value(["kitti_000000.png", "kitti_000001.png"]).run()
    assert not at.exception and len(at.get("download_button")) == 9  # A and B, 2 each per frame, + the zip


def test_validation_page_scores_and_browses_frames(standins, predictor):
    at = run_app("validation")
    metrics = {m.label: m.value for m in at.metric}
    ref = evaluate(predictor, standins["SEG_DATA"])
    assert metrics["Frames"] == "6 of 6" and metrics["mIoU"] == f"{ref['miou']:.1%}"
    assert metrics["Pixel accuracy"] == f"{ref['pixel_acc']:.1%}"
    assert "pixel accuracy" in _texts(at)
    at.selectbox(key="val_order").set_value("best mIoU first")
    at.toggle(key="val_overlay").set_value(True)
    at.selectbox(key="val_per_page").set_value(4)
    at.run()
    assert not at.exception, at.exception
    at.number_input(key="val_page").set_value(2)
    at.multiselect(key="val_only").set_value([13])  # Road only
    at.toggle(key="val_outline").set_value(True)
    at.run()
    assert not at.exception, at.exception
    at.number_input(key="val_limit").set_value(5)
    at.run()
    assert not at.exception and {m.label: m.value for m in at.metric}["Frames"] == "5 of 6"
    assert not any("not scored yet" in i.value for i in at.info)  # those 5 were scored before
    captions = [img.caption for e in at.get("image") for img in e.proto.imgs]
    assert "with their IoU here" in _texts(at) and any(c.startswith("Errors: ") for c in captions)


@pytest.mark.parametrize("typed", ["../../etc", "/etc", "~"])
def test_sidebar_refuses_paths_outside_the_allowed_folders(standins, typed):
    at = run_app()
    at.sidebar.text_input(key="src_runs").set_value(typed)
    at.sidebar.text_input(key="src_data").set_value(typed)
    at.run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 2 and all("outside the folders this app may read" in e for e in errors)
    at.switch_page("pages/training.py").run()
    assert not at.exception and len(at.sidebar.error) == 2 and "outside the folders" in _texts(at)
    listed = [w.options for w in at.multiselect if w.key == "train_runs"]
    assert not listed or set(listed[0]) <= {"demo (bundled)"}  # nothing read from the typed folder
    at.switch_page("pages/validation.py").run()
    assert not at.exception and "Set a valid dataset folder" in _texts(at) and not at.metric


def test_confine_and_config_precedence(tmp_path):
    cfg = appconfig.load_config(["--data", str(tmp_path)], environ={"SEG_DATA": "/nonexistent", "SEG_RUNS": str(tmp_path)})
    assert cfg.data == tmp_path.resolve() and cfg.runs == tmp_path.resolve()
    assert tmp_path.resolve() in cfg.roots and REPO_ROOT.resolve() in cfg.roots
    assert appconfig.confine(str(tmp_path / "x"), cfg.roots) == tmp_path.resolve() / "x"
    assert appconfig.confine("seg", cfg.roots) == REPO_ROOT.resolve() / "seg"
    for bad in ("../../etc", "/etc/passwd", str(tmp_path / ".." / "elsewhere")):
        with pytest.raises(ValueError, match="outside the folders"):
            appconfig.confine(bad, cfg.roots)
    link = tmp_path / "link"
    link.symlink_to("/etc")
    with pytest.raises(ValueError, match="outside the folders"):
        appconfig.confine(str(link), cfg.roots)


def _png(size=(64, 48), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 120).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def predictor(standins):
    return Predictor(checkpoint=standins["SEG_CHECKPOINT"])


def test_run_inference_serves_good_files_and_names_bad_ones(predictor):
    ok = views.run_inference(predictor, "frame.PNG", _png())
    assert isinstance(ok, views.InferenceResult)
    assert ok.labels.shape == (48, 64) and ok.image.shape == (48, 64, 3) and ok.confidence.shape == (48, 64)
    assert abs(sum(r["share"] for r in ok.legend) - 1.0) < 1e-6 and ok.ms > 0
    np.testing.assert_array_equal(ok.labels, predictor.predict(Image.open(io.BytesIO(_png()))))
    gray16 = views.run_inference(predictor, "odd.png", _png(mode="I;16"))
    assert isinstance(gray16, views.InferenceResult)
    bad = {
        "notes.jpg": b"this is not an image",
        "cut.png": _png((256, 256))[:200],
        "empty.webp": b"",
    }
    for name, data in bad.items():
        res = views.run_inference(predictor, name, data)
        assert isinstance(res, views.InferenceFailure), name
        assert res.message.startswith(f"{name}: ") and "\n" not in res.message
    huge = views.run_inference(predictor, "huge.png", _png((200, 200)), max_pixels=10_000)
    assert isinstance(huge, views.InferenceFailure) and "limit" in huge.message


def test_downloads_are_paletted_label_png_and_rgb_overlay(predictor):
    res = views.run_inference(predictor, "f.png", _png())
    lbl = Image.open(io.BytesIO(views.label_png_bytes(res.labels, predictor.classes)))
    assert lbl.mode == "P"
    np.testing.assert_array_equal(np.asarray(lbl), res.labels)  # pixel values are the class ids
    ovl = Image.open(io.BytesIO(views.png_bytes(views.overlay_view(res.image, res.labels, predictor.classes, 0.5))))
    assert ovl.mode == "RGB" and ovl.size == (64, 48)


def test_upload_types_accept_upper_case_extensions():
    """Streamlit lower-cases names before checking `type=`, so dashcam .JPG files are accepted; the uploader
    takes what seg.imageio.load_image reads, nothing else."""
    allowed = normalize_upload_file_type(views.UPLOAD_TYPES)
    for name in ("A.JPG", "b.Jpeg", "c.PNG", "d.webp", "e.BMP", "f.Gif", "g.TIFF"):
        enforce_filename_restriction(name, allowed)
    for name in ("x.heic", "x.svg", "notes.txt"):
        with pytest.raises(Exception, match="Invalid file extension"):
            enforce_filename_restriction(name, allowed)


def test_frame_selection_and_paging():
    frames = [{"stem": f"f{i}", "pixel_acc": i / 10, "miou": (5 - i) / 10,
               "classes": ["Road", "Sky"] if i % 2 else ["Road"]} for i in range(5)]
    worst = views.select_frames(frames, "worst mIoU first")
    assert [f["stem"] for f in worst] == ["f4", "f3", "f2", "f1", "f0"]
    with_sky = views.select_frames(frames, "best mIoU first", VISTAS.index("Sky"), VISTAS)
    assert [f["stem"] for f in with_sky] == ["f1", "f3"]
    assert views.page_of(list(range(10)), 3, 4) == [8, 9] and views.page_of(list(range(10)), 9, 4) == [8, 9]
    assert views.n_pages(0, 4) == 1 and views.n_pages(9, 4) == 3
    # A/B: B's mIoU minus A's; f0: -0.4, f1: +0.1, f2: 0, f3: +0.3, f4: no score for B (last either way)
    frames_b = [{"stem": s, "miou": m} for s, m in [("f0", 0.1), ("f1", 0.5), ("f2", 0.3), ("f3", 0.5), ("f4", None)]]
    loses, gains = views.AB_SORT_ORDERS
    assert [f["stem"] for f in views.select_frames(frames, loses, frames_b=frames_b)] == ["f0", "f2", "f1", "f3", "f4"]
    assert [f["stem"] for f in views.select_frames(frames, gains, frames_b=frames_b)] == ["f3", "f1", "f2", "f0", "f4"]
    with pytest.raises(ValueError, match="needs the frames scored by B"):
        views.select_frames(frames, loses)


def test_confusion_view_is_row_normalised_over_present_classes():
    mat = np.zeros((66, 66), np.int64)
    mat[13, 13], mat[13, 27], mat[27, 27], mat[65, 13] = 3, 1, 2, 50
    names, shares = views.confusion_view(mat.tolist(), VISTAS)
    assert names == ["Road", "Sky"]
    np.testing.assert_allclose(shares, [[0.75, 0.25], [0.0, 1.0]])


def test_training_figures_keep_zoom_and_ignore_eval_rows_on_the_loss_axis(tmp_path):
    d = write_run(tmp_path / "r", steps=200, every=20, eval_every=100)
    with open(d / "metrics.jsonl", "a") as f:
        f.write('{"step": 220, "loss": 0.')  # the trainer is mid-line
    run = runlog.load_run(d)
    loss = figures.loss_figure([run], 0.6, log_y=True, x_axis="step")
    assert loss.layout.uirevision == "loss" and loss.layout.yaxis.type == "log"
    raw, smooth = loss.data
    assert list(raw.x) == list(range(20, 201, 20)) and smooth.y[0] == pytest.approx(raw.y[0])
    miou = figures.series_figure([run], "val_miou", "mIoU", x_axis="time")
    assert list(miou.data[0].x) == pytest.approx([40 / 60, 90 / 60])  # eval steps on the train clock (0 = first row)
