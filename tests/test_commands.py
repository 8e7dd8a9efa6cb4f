"""Every command users run keeps its name after the move to packages: `python -m seg.X --help` answers with
that command's own usage. (Each command's real runs are tested beside its code: test_train, test_predict,
test_evaluate, test_prepare, test_export, test_bench, test_synth, test_datastats, test_video.)"""
import json
import subprocess
import sys

import pytest

from seg.checkpoint import load_checkpoint
from seg.classes import VISTAS
from seg.classmap import get_classmap
from seg.data.vistas import read_label
from seg.imageio import load_image
from seg.infer.predictor import Predictor
from seg.paths import DEFAULT_DATA, REPO_ROOT

COMMANDS = {  # module -> a flag only that command's usage lists
    "seg.train": "--preset", "seg.predict": "--overlay", "seg.evaluate": "--json", "seg.prepare": "--dst",
    "seg.export": "--opset", "seg.bench": "--quick", "seg.synth": "--style", "seg.datastats": "--split",
    "seg.video": "--seconds",
}


@pytest.mark.slow
@pytest.mark.parametrize("module", sorted(COMMANDS))
def test_command_answers_help_with_its_own_usage(module):
    r = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO_ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage:") and COMMANDS[module] in r.stdout and not r.stderr.strip()


@pytest.mark.slow
def test_bench_quick_writes_its_report(tmp_path):
    """The one real run of `python -m seg.bench` (its parts are unit-tested in test_bench): every figure of
    the report is there, and the agreement with the naive pipeline is measured, not assumed."""
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "-m", "seg.bench", "--quick", "--json", str(out)], cwd=REPO_ROOT,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    for key in ("forward_ms", "predict_ms", "predict_full_ms", "naive_ms", "train_img_s", "synth_img_s"):
        assert res[key] > 0, key
    assert 0.9 <= res["agreement"] <= 1.0 and res["cpu"] and res["backend"] in ("onnxruntime", "torch")


@pytest.mark.parametrize("name", ["demo", "lanes"])
def test_bundled_checkpoints_load_and_segment_their_validation_frame(name):
    """Checkpoints written before the move to packages load (nothing is pickled by module path) and still
    segment a bundled validation frame well (folded to the model's own class table)."""
    ckpt = load_checkpoint(REPO_ROOT / "checkpoints" / name / "model.pt")
    pred = Predictor(REPO_ROOT / "checkpoints" / name / "model.pt", backend="torch", precision="fp32")
    image = next(iter(sorted((DEFAULT_DATA / "validation" / "images").glob("*.jpg"))))
    truth = read_label(DEFAULT_DATA / "validation" / "labels" / f"{image.stem}.png", VISTAS)
    if ckpt.get("classmap"):
        truth = get_classmap(ckpt["classmap"], VISTAS)(truth)
    labels = pred.predict(load_image(image))
    scored = truth != pred.classes.ignore_index
    assert labels.shape == truth.shape and (labels[scored] == truth[scored]).mean() > 0.7
