"""The app against hostile folders and files (AppTest): links out of the runs or dataset folder are not
followed, hostile dataset files and checkpoints give one error on the page instead of an exception, and
a sidebar path too long for the OS is an error in the sidebar only."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import hostile
from appstandins import make_standins, no_legacy_pages_dir, run_app, write_run
from conftest import write_vistas
from seg.data.vistas import DataError, VistasDataset
from seg.train import runlog
from seg.paths import REPO_ROOT



@pytest.fixture(autouse=True)
def _apptest_navigation(monkeypatch):
    no_legacy_pages_dir(monkeypatch)


@pytest.fixture(scope="module")
def standins(tmp_path_factory) -> dict:
    return make_standins(tmp_path_factory.mktemp("app"), n_samples=1)


@pytest.fixture
def env(standins, monkeypatch, tmp_path) -> dict:
    """The stand-ins, with a fresh dataset of the test's own (SEG_DATA) that it may damage."""
    data = write_vistas(tmp_path / "data", n_train=1, n_val=4, size=(64, 48))
    values = dict(standins, SEG_DATA=str(data))
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


def _texts(at, kinds=("markdown", "caption", "error", "warning", "info")) -> str:
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


# ---- links out of the allowed folders ------------------------------------------------------------------


@pytest.fixture
def evil_runs(env, tmp_path, monkeypatch) -> Path:
    """A runs folder holding one real run, a link to / and a link to another user's run outside every root."""
    runs = tmp_path / "evil" / "runs"
    write_run(runs / "mine", steps=60)
    write_run(tmp_path / "outside" / "theirs", steps=80)
    (runs / "root").symlink_to("/")
    (runs / "other").symlink_to(tmp_path / "outside")
    monkeypatch.setenv("SEG_RUNS", str(runs))
    return runs


def test_list_runs_does_not_follow_links_out_of_the_allowed_folders(evil_runs, tmp_path):
    assert runlog.list_runs(evil_runs) == [evil_runs / "mine"]
    assert runlog.list_runs(evil_runs, (evil_runs, REPO_ROOT)) == [evil_runs / "mine"]
    # a link whose target is inside an allowed root is followed
    assert evil_runs / "other" / "theirs" in runlog.list_runs(evil_runs, (evil_runs, tmp_path / "outside"))
    (evil_runs / "mine" / "metrics.jsonl").unlink()
    (evil_runs / "mine" / "metrics.jsonl").symlink_to(tmp_path / "outside" / "theirs" / "metrics.jsonl")
    assert runlog.list_runs(evil_runs) == []  # the log itself a link out


def test_training_page_lists_and_charts_only_runs_inside_the_allowed_folders(evil_runs):
    at = run_app()
    assert "1 run found" in _texts(at)
    at.switch_page("pages/training.py").run()
    assert not at.exception, at.exception
    options = at.multiselect(key="train_runs").options
    assert "mine" in options and not any(o.startswith(("other", "root")) for o in options), options
    summary = at.dataframe[0].value
    assert "theirs" not in " ".join(map(str, summary["run"]))


def test_validation_page_skips_dataset_files_linked_from_outside(env, tmp_path):
    data = Path(env["SEG_DATA"])
    outside = write_vistas(tmp_path / "elsewhere", n_train=1, n_val=1, size=(64, 48), seed=3)
    for sub, ext in (("images", ".jpg"), ("labels", ".png")):
        link = data / "validation" / sub / f"f009{ext}"
        link.symlink_to(outside / "validation" / sub / f"f000{ext}")
    at = run_app("validation")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Frames"] == "4 of 4", metrics  # the linked pair is neither scored nor shown
    assert "f009" in _texts(at, ("warning",)) and "outside" in _texts(at, ("warning",))
    assert "f009" not in _texts(at, ("markdown",))


def test_dataset_config_linked_from_outside_is_refused(tmp_path):
    data = write_vistas(tmp_path / "data", n_train=1, n_val=2, size=(64, 48))
    outside = write_vistas(tmp_path / "elsewhere", n_train=1, n_val=1, size=(64, 48))
    (data / "config.json").unlink()
    (data / "config.json").symlink_to(outside / "config.json")
    assert len(VistasDataset(data, "validation")) == 2  # the library alone follows the link
    with pytest.raises(DataError, match="config.json: leads outside the allowed folders"):
        VistasDataset(data, "validation", roots=(data,))


# ---- hostile dataset files -----------------------------------------------------------------------------


@pytest.mark.parametrize("attack", ["bomb_label", "nested_config", "many_classes_config", "overflow_color_config"])
def test_hostile_dataset_file_is_one_error_on_the_validation_page(env, attack):
    named = getattr(hostile, attack)(Path(env["SEG_DATA"])).name
    at = run_app("validation")
    assert len(at.error) == 1 and named in at.error[0].value and "\n" not in at.error[0].value, _texts(at)
    assert not at.metric


def test_unreadable_labels_folder_is_one_error_on_the_validation_page(env):
    with hostile.unreadable(Path(env["SEG_DATA"]) / "validation" / "labels"):
        at = run_app("validation")
    assert len(at.error) == 1 and "cannot list" in at.error[0].value, _texts(at)


def test_undecodable_file_name_is_shown_not_raised(env):
    hostile.undecodable_name(Path(env["SEG_DATA"]))
    at = run_app("validation")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Frames"] == "4 of 4"
    assert "\ufffd\ufffdf000" in _texts(at, ("markdown",))


def test_undecodable_run_folder_name_is_shown_not_raised(env, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    write_run(Path(os.fsdecode(os.fsencode(runs) + b"/\xff\xfe-run")), steps=40)
    monkeypatch.setenv("SEG_RUNS", str(runs))
    at = run_app("training")
    assert "\ufffd\ufffd-run" in at.multiselect(key="train_runs").options


# ---- sidebar and checkpoint ----------------------------------------------------------------------------


def test_a_path_too_long_for_the_os_is_a_sidebar_error_only(env):
    at = run_app()
    at.sidebar.text_input(key="src_data").set_value("d" * 300)
    at.run()
    assert not at.exception, at.exception
    (error,) = [e.value for e in at.sidebar.error]
    assert "File name too long" in error and len(error) < 200, error
    for page in ("training", "validation", "inference"):
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)


@pytest.mark.parametrize("field,value", [("normalize", "x"), ("input_size", [0, 0]), ("classes", "hello"),
                                         ("model_args", "x")])
def test_hostile_checkpoint_is_one_error_on_home(env, tmp_path, monkeypatch, field, value):
    ckpt = torch.load(env["SEG_CHECKPOINT"], weights_only=True)
    ckpt[field] = value
    path = tmp_path.resolve() / "ckpts" / "hostile.pt"
    path.parent.mkdir()
    torch.save(ckpt, path)
    monkeypatch.setenv("SEG_CHECKPOINT", str(path))
    at = run_app()
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and f"bad field {field}" in errors[0] and str(path) in errors[0], errors
    at.switch_page("pages/inference.py").run()
    assert not at.exception and f"bad field {field}" in _texts(at, ("error",))
