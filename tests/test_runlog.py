"""seg.runlog: parsing (half-written last line, eval rows, events), debiased EMA, summaries, the end-of-run
calibration stages, run discovery."""
import json
import os
import threading

import pytest

from seg.train import runlog


def _write(path, rows, tail=""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)


TRAIN = [
    {"step": 10, "loss": 2.0, "lr": 1e-3, "img_per_s": 10.0, "time": 1_700_000_000.0},
    {"step": 20, "loss": 1.5, "lr": 9e-4, "img_per_s": 12.0, "time": 1_700_000_010.0},
    {"step": 30, "loss": 1.7, "lr": 8e-4, "img_per_s": 14.0, "time": 1_700_000_030.0},
]
EVAL = [{"step": 20, "val_miou": 0.31, "val_pixel_acc": 0.8}, {"step": 30, "val_miou": 0.25, "val_pixel_acc": 0.82}]


def test_read_metrics_separates_eval_rows_and_skips_half_written_last_line(tmp_path):
    p = tmp_path / "run" / "metrics.jsonl"
    _write(p, [TRAIN[0], TRAIN[1], EVAL[0], TRAIN[2], EVAL[1]], tail='{"step": 40, "loss": 1.')
    train, evals = runlog.read_metrics(p)
    assert [r["step"] for r in train] == [10, 20, 30]  # the half-written step 40 is skipped
    assert [r["step"] for r in evals] == [20, 30]
    assert all("loss" in r for r in train) and all("val_miou" in r for r in evals)


def test_read_metrics_broken_middle_line_names_file_and_line(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text(json.dumps(TRAIN[0]) + "\n{oops\n" + json.dumps(TRAIN[1]) + "\n")
    with pytest.raises(runlog.RunLogError, match=r"metrics.jsonl:2"):
        runlog.read_metrics(p)


def test_ema_is_debiased_at_the_start():
    values = [10.0, 10.0, 10.0, 4.0]
    smoothed = runlog.ema(values, 0.9)
    assert smoothed[0] == pytest.approx(10.0)  # debiased: first value equals the first raw value
    assert smoothed[2] == pytest.approx(10.0)  # a constant stays constant
    # The undebiased TensorBoard-style average starting from 0 would give 1.0 for the first point.
    undebiased, last = [], 0.0
    for v in values:
        last = 0.9 * last + 0.1 * v
        undebiased.append(last)
    assert undebiased[0] == pytest.approx(1.0) and smoothed[0] != pytest.approx(undebiased[0])
    assert 4.0 < smoothed[3] < 10.0
    assert runlog.ema(values, 0.0) == values
    with pytest.raises(ValueError):
        runlog.ema(values, 1.0)


def test_ema_passes_non_finite_values_through():
    out = runlog.ema([1.0, float("nan"), 3.0], 0.5)
    assert out[0] == 1.0 and out[1] != out[1] and 1.0 < out[2] < 3.0


def test_summarize(tmp_path):
    _write(tmp_path / "a" / "metrics.jsonl", TRAIN + EVAL)
    s = runlog.summarize(runlog.load_run(tmp_path / "a"))
    assert s["run"] == "a" and s["steps"] == 30
    assert s["last_loss"] == 1.7 and s["best_loss"] == 1.5
    assert s["best_miou"] == 0.31 and s["best_pixel_acc"] == 0.82
    assert s["img_per_s"] == pytest.approx(12.0) and s["duration_s"] == pytest.approx(30.0)
    assert s["live"] is True  # just written


def test_summarize_without_eval_rows(tmp_path):
    _write(tmp_path / "metrics.jsonl", TRAIN[:1])
    s = runlog.summarize(runlog.load_run(tmp_path))
    assert s["best_miou"] is None and s["steps"] == 10


def test_elapsed_accepts_relative_and_unix_times():
    assert runlog.elapsed_s(TRAIN) == [0.0, 10.0, 30.0]
    assert runlog.elapsed_s([{"time": 5.0}, {"time": 9.0}]) == [5.0, 9.0]


def test_list_runs(tmp_path):
    _write(tmp_path / "b" / "metrics.jsonl", TRAIN)
    _write(tmp_path / "a" / "metrics.jsonl", TRAIN)
    _write(tmp_path / "sweep" / "lr1" / "metrics.jsonl", TRAIN)
    (tmp_path / "empty").mkdir()
    runs = runlog.list_runs(tmp_path)
    assert [runlog.run_name(r, tmp_path) for r in runs] == ["a", "b", "sweep/lr1"]
    assert runlog.list_runs(tmp_path / "missing") == []


CALIBRATED = TRAIN + [
    {"step": 30, "logit_adjust": 0.5, "val_miou_before": 0.40},
    {"step": 30, "bias_fit": 192, "heldout_miou_before": 0.70, "heldout_miou_after": 0.72, "val_miou_before": 0.45},
    {"step": 30, "val_miou": 0.47, "val_pixel_acc": 0.9},
]


def test_events_are_kept_apart_from_curves_and_read_as_calibration_stages(tmp_path):
    _write(tmp_path / "metrics.jsonl", CALIBRATED)
    train, evals, events = runlog.read_log(tmp_path / "metrics.jsonl")
    assert len(train) == 3 and [r["val_miou"] for r in evals] == [0.47] and len(events) == 2
    assert runlog.read_metrics(tmp_path / "metrics.jsonl") == (train, evals)
    stages = runlog.calibration(runlog.load_run(tmp_path))
    assert [(s["stage"], s["val_miou"]) for s in stages] == [
        ("trained", 0.40), ("logit adjustment", 0.45), ("bias fit", 0.47)]
    assert "192 held-out frames" in stages[2]["detail"] and "70.0% → 72.0%" in stages[2]["detail"]
    assert "0.5" in stages[1]["detail"]


def test_calibration_of_a_plain_run_is_empty_and_a_killed_one_shows_what_it_reached(tmp_path):
    _write(tmp_path / "a" / "metrics.jsonl", TRAIN + EVAL)
    assert runlog.calibration(runlog.load_run(tmp_path / "a")) == []
    _write(tmp_path / "b" / "metrics.jsonl", CALIBRATED[:4])  # killed before the bias fit and final evaluation
    stages = runlog.calibration(runlog.load_run(tmp_path / "b"))
    assert [(s["stage"], s["val_miou"]) for s in stages] == [("trained", 0.40), ("logit adjustment", None)]


def _aged(path, seconds=3600):
    import os
    import time

    t = time.time() - seconds
    os.utime(path, (t, t))


def test_status_comes_from_the_end_record_not_the_file_age(tmp_path):
    done = tmp_path / "done" / "metrics.jsonl"
    _write(done, TRAIN + EVAL + [{"step": 30, "end": "done"}])
    run = runlog.load_run(done.parent)
    assert run.end == {"step": 30, "end": "done"} and run.status == "finished" and not run.live
    assert all("end" not in e for e in run.events)  # the end record is not a calibration event
    assert not runlog.is_live(done.parent)  # fresh file, but it says it is over

    cut = tmp_path / "cut" / "metrics.jsonl"
    _write(cut, TRAIN, tail='{"step": 40, "loss": 1.')  # killed mid-line, no end record
    _aged(cut)
    run = runlog.load_run(cut.parent)
    assert run.end is None and run.status == "stopped mid-run (no end record)"
    assert runlog.summarize(run)["status"] == "stopped mid-run (no end record)"

    _write(cut, TRAIN)  # the same log while it is being written
    assert runlog.load_run(cut.parent).status == "live" and runlog.is_live(cut.parent)

    nan = tmp_path / "nan" / "metrics.jsonl"
    _write(nan, TRAIN + [{"step": 30, "end": "nan"}])
    assert runlog.load_run(nan.parent).status == "stopped: loss NaN/inf"


def test_an_end_record_followed_by_more_steps_is_a_resumed_run(tmp_path):
    p = tmp_path / "metrics.jsonl"
    _write(p, TRAIN[:2] + [{"step": 20, "end": "interrupted"}, TRAIN[2]])
    run = runlog.load_run(tmp_path)
    assert run.end is None and run.status == "live" and [r["step"] for r in run.train] == [10, 20, 30]


def test_load_run_skips_a_broken_middle_line_and_lists_it(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text(json.dumps(TRAIN[0]) + "\n{oops\n" + json.dumps(TRAIN[1]) + "\n[1, 2]\n" + json.dumps(EVAL[0]) + "\n")
    run = runlog.load_run(tmp_path)
    assert run.bad_lines == [2, 4]
    assert [r["step"] for r in run.train] == [10, 20] and [r["step"] for r in run.eval] == [20]
    with pytest.raises(runlog.RunLogError, match=r"metrics.jsonl:2"):  # read_log alone stays strict
        runlog.read_log(p)


# ---- hostile logs (issue 23) ---------------------------------------------------------------------------


def test_a_non_utf8_byte_is_a_broken_line_naming_the_file_and_line(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_bytes(json.dumps(TRAIN[0]).encode() + b'\n{"step": 20, "loss": 1.5, "note": "\xff"}\n'
                  + json.dumps(TRAIN[2]).encode() + b"\n")
    with pytest.raises(runlog.RunLogError, match=r"metrics.jsonl:2: not UTF-8 text \(byte 0xff at column 36\)"):
        runlog.read_log(p)
    run = runlog.load_run(tmp_path)
    assert run.bad_lines == [2] and [r["step"] for r in run.train] == [10, 30]
    p.write_bytes(json.dumps(TRAIN[0]).encode() + b'\n{"step": 20, "note": "\xc3')  # a character cut by the writer
    assert [r["step"] for r in runlog.read_log(p)[0]] == [10]


BAD_VALUES = [
    {"step": 10, "loss": 2.0, "lr": 1e-3, "img_per_s": 10.0, "time": float("nan")},
    {"step": 20, "loss": float("inf"), "lr": "abc", "img_per_s": [1, 2], "time": 10.0},
    {"step": 30, "loss": True, "lr": 8e-4, "img_per_s": 12.0, "time": 20.0},
    {"step": 30, "val_miou": float("-inf"), "val_pixel_acc": {"a": 1}},
    {"step": 30, "logit_adjust": "x", "val_miou_before": float("nan")},
    {"step": 30, "end": ["done"]},
]


def test_non_finite_and_wrong_typed_values_are_gaps_listed_by_line(tmp_path):
    p = tmp_path / "metrics.jsonl"
    _write(p, BAD_VALUES)  # json.dumps writes NaN / Infinity, as Python's json reads them
    with pytest.raises(runlog.RunLogError, match=r"metrics.jsonl:1: time is NaN, not a finite number"):
        runlog.read_log(p)
    run = runlog.load_run(tmp_path)
    assert run.bad_lines == []
    assert run.bad_values == [(1, "time"), (2, "loss"), (2, "lr"), (2, "img_per_s"), (3, "loss"), (4, "val_miou"),
                              (4, "val_pixel_acc"), (5, "val_miou_before"), (5, "logit_adjust"), (6, "end")]
    assert [r["loss"] for r in run.train] == [2.0, None, None] and [r["time"] for r in run.train] == [None, 10.0, 20.0]
    s = runlog.summarize(run)  # int(NaN) and min("abc", 1.0) broke the Training page's summary
    assert s["last_loss"] == 2.0 and s["img_per_s"] == 11.0 and s["duration_s"] == 20.0 and s["best_miou"] is None
    assert run.status == "ended (None)"
    assert [st["detail"] for st in runlog.calibration(run)][1] == "−? × log(class weight)"


@pytest.mark.parametrize("step", ['"abc"', "NaN", "-1", "1.5", "true", "1e400", "9" * 30, "null"])
def test_a_step_that_is_not_a_whole_number_is_a_broken_line(tmp_path, step):
    p = tmp_path / "metrics.jsonl"
    p.write_text(json.dumps(TRAIN[0]) + f'\n{{"step": {step}, "loss": 1.0}}\n' + json.dumps(TRAIN[1]) + "\n")
    with pytest.raises(runlog.RunLogError, match=r"metrics.jsonl:2: step is .*, not a whole number >= 0"):
        runlog.read_log(p)
    run = runlog.load_run(tmp_path)
    assert run.bad_lines == [2] and [r["step"] for r in run.train] == [10, 20]
    assert runlog.summarize(run)["steps"] == 20


def test_a_log_that_is_not_a_regular_file_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "metrics.jsonl"
    os.mkfifo(fifo)
    # Before the fix the reader waited in open() for a writer: this one lets it through to EOF instead.
    writer = threading.Thread(target=lambda: open(fifo, "w").close(), daemon=True)
    writer.start()
    try:
        with pytest.raises(runlog.RunLogError, match=r"metrics.jsonl: not a regular file"):
            runlog.read_log(fifo)
    finally:
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # held open: the writer's open() returns, now or later
        writer.join()
        os.close(reader)
