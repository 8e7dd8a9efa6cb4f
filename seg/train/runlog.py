"""Training run logs (`RUNDIR/metrics.jsonl`): written by seg.train (`MetricsLog`), read for the Training
page and scripts.

A line is one JSON object: a train row `{"step", "loss", "lr", "img_per_s", "time"}`, an eval row
`{"step", "val_miou", "val_pixel_acc"}`, or an event (the end-of-run calibration steps,
`{"step", "logit_adjust", "val_miou_before"}` and `{"step", "bias_fit", ..., "val_miou_before"}`). They are
kept apart so evaluation lines never bend the training curve's x axis. seg.train ends the log with an end
record `{"step", "end": "done" | "interrupted" | "nan" | "error"}`; a log without one was cut off (killed,
crashed, still running). The trainer may be writing the file while we read it, so a last line that is not
yet complete is skipped; a broken line anywhere else (not UTF-8, not a JSON object, no usable step) is an
error naming the file and line (`read_log`), or is skipped and listed (`load_run`, for the app). A known
number field holding something else (NaN, Infinity, a string, a list) is the same error in `read_log`; in
`load_run` the value becomes None (a gap in its curve) and the line is listed in `bad_values`.
"""
from __future__ import annotations

import json
import math
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from seg.cli import one_line
from seg.paths import inside, printable

METRICS_FILE = "metrics.jsonl"
# A run whose log changed within this many seconds is shown as "live" and refreshed by itself.
LIVE_WINDOW_S = 120.0
# Runs are found at most this many folders below the runs root (a run root may hold data too).
MAX_DEPTH = 3
# Fields the readers compute with: each must be a finite number (or null) when present.
NUMBER_FIELDS = ("loss", "lr", "img_per_s", "time", "val_miou", "val_pixel_acc", "val_miou_before", "logit_adjust",
                 "bias_fit", "heldout_miou_before", "heldout_miou_after", "skipped", "gpu_mem_gb")
MAX_STEP = 2**53  # steps are integers a float64 axis holds exactly


class RunLogError(ValueError):
    """A metrics.jsonl that cannot be read; the message names the file and line."""


@dataclass
class RunData:
    """One run's log: `train` and `eval` are lists of row dicts in file order."""

    name: str
    path: Path  # the metrics.jsonl file
    train: list[dict] = field(default_factory=list)
    eval: list[dict] = field(default_factory=list)
    mtime: float = 0.0
    events: list[dict] = field(default_factory=list)
    end: dict | None = None  # the end record, when it is the log's last record
    bad_lines: list[int] = field(default_factory=list)  # 1-based numbers of lines skipped as broken
    bad_values: list[tuple[int, str]] = field(default_factory=list)  # (line, field) of values set to None

    @property
    def live(self) -> bool:
        """True when the log has no end record and changed recently: the run is probably still training."""
        return self.end is None and time.time() - self.mtime < LIVE_WINDOW_S

    @property
    def status(self) -> str:
        """What the log itself says about the run (see END_STATUS); never guessed from the file's age alone."""
        if self.end is not None:
            return END_STATUS.get(self.end.get("end"), f"ended ({self.end.get('end')})")
        return "live" if self.live else "stopped mid-run (no end record)"


END_STATUS = {"done": "finished", "interrupted": "interrupted (resumable)", "nan": "stopped: loss NaN/inf",
              "error": "crashed"}


def read_metrics(path: str | Path) -> tuple[list[dict], list[dict]]:
    """Parse a metrics.jsonl into `(train_rows, eval_rows)` (see `read_log`; events left out)."""
    train, evals, _ = read_log(path)
    return train, evals


class LogLine(NamedTuple):
    """One line of a metrics.jsonl as `log_lines` gives it."""

    number: int  # 1-based
    text: str
    ended: bool  # False for a last line without its newline: the writer may be mid-line


def log_lines(path: str | Path, bad_lines: list[int] | None = None) -> list[LogLine]:
    """The non-blank lines of a metrics.jsonl, decoded as UTF-8.

    A line that is not UTF-8 raises RunLogError naming the file and line or, when a `bad_lines` list is
    given, is skipped and its 1-based number appended there (a last line without its newline is skipped
    silently: the writer may have cut a character in two). Only a regular file is read: anything else (a
    FIFO would block the reader forever) is a RunLogError. FileNotFoundError if absent.
    """
    path = Path(path)
    chunks = _read_regular(path).split(b"\n")
    lines = []
    for i, chunk in enumerate(chunks):
        if not chunk.strip():
            continue
        ended = i < len(chunks) - 1
        try:
            lines.append(LogLine(i + 1, chunk.decode("utf-8"), ended))
        except UnicodeDecodeError as e:
            if ended:
                _skip(path, i + 1, f"not UTF-8 text (byte 0x{chunk[e.start]:02x} at column {e.start + 1})",
                      bad_lines)
    return lines


def read_log(path: str | Path, bad_lines: list[int] | None = None, bad_values: list[tuple[int, str]] | None = None
             ) -> tuple[list[dict], list[dict], list[dict]]:
    """Parse a metrics.jsonl into `(train_rows, eval_rows, events)`.

    Train rows are those with a "loss", eval rows those with a "val_miou", events every other object
    with a "step" (the end record included, last). A half-written last line (no trailing newline, not valid
    JSON) is skipped. A broken line before the last (not UTF-8, not a JSON object, no step that is a whole
    number >= 0) raises RunLogError naming the file and line, or, when a `bad_lines` list is given, is
    skipped and its 1-based number appended there. A NUMBER_FIELDS value that is not a finite number (NaN,
    Infinity, text) raises the same way, or, with a `bad_values` list, becomes None and (line, field) is
    appended there. Raises FileNotFoundError if absent, RunLogError for a file that is not a regular file.
    """
    path = Path(path)
    train, evals, events = [], [], []
    for number, text, ended in log_lines(path, bad_lines):
        row, problem = _parse(text)
        if problem and row is None and not ended:  # the writer is mid-line
            continue
        if problem:
            _skip(path, number, problem, bad_lines)
            continue
        row["step"] = int(row["step"])
        for key in _bad_fields(row):
            if bad_values is None:
                raise RunLogError(f"{printable(path)}:{number}: {key} is {_shown(row[key])}, not a finite number")
            bad_values.append((number, key))
            row[key] = None
        if "loss" in row:
            train.append(row)
        elif "val_miou" in row:
            evals.append(row)
        else:
            events.append(row)
    return train, evals, events


def _read_regular(path: Path) -> bytes:
    # O_NONBLOCK: opening a FIFO for reading would wait for a writer; a regular file reads as usual.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise RunLogError(f"{printable(path)}: not a regular file")
        return f.read()


def _skip(path: Path, number: int, problem: str, bad_lines: list[int] | None) -> None:
    if bad_lines is None:
        raise RunLogError(f"{printable(path)}:{number}: {problem}")
    bad_lines.append(number)


def _parse(text: str) -> tuple[object, str | None]:
    """(the line's JSON value or None, why it is not a log row or None)."""
    try:
        row = json.loads(text)
    except RecursionError:  # [[[[...]]]] nested too deep
        return None, "not a JSON object (nested too deep)"
    except ValueError as e:  # JSONDecodeError, or an integer of over 4300 digits
        return None, f"not a JSON object ({e.msg if isinstance(e, json.JSONDecodeError) else one_line(e, 80)})"
    return row, _row_problem(row)


def is_number(v) -> bool:
    """A finite int or float; bools are not numbers here, nor ints too large for a float."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _row_problem(row) -> str | None:
    """Why a parsed line cannot be a log row, or None."""
    if not isinstance(row, dict) or "step" not in row:
        return "expected an object with a 'step'"
    step = row["step"]
    if not (is_number(step) and float(step).is_integer() and 0 <= step <= MAX_STEP):
        return f"step is {_shown(step)}, not a whole number >= 0"
    return None


def _bad_fields(row: dict) -> list[str]:
    """The row's NUMBER_FIELDS holding something other than a finite number or null, and a non-text "end"."""
    bad = [k for k in NUMBER_FIELDS if row.get(k) is not None and not is_number(row[k])]
    return bad + (["end"] if "end" in row and not isinstance(row["end"], str) else [])


def _shown(value) -> str:
    """`value` as JSON for a one-line message, cut at 40 characters."""
    try:
        text = json.dumps(value)
    except (ValueError, RecursionError):  # an int of over 4300 digits, a list nested too deep
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= 40 else text[:37] + "..."


def ema(values: list[float], weight: float) -> list[float]:
    """TensorBoard's debiased exponential moving average.

    `weight` in [0, 1): 0 returns the values unchanged. The running average starts at 0 and is divided
    by `1 - weight**n` (n = finite values seen), so the first output equals the first input instead of
    being dragged toward 0. Non-finite values pass through and do not enter the average.
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    out, last, n = [], 0.0, 0
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1.0 - weight) * v
        n += 1
        out.append(last / (1.0 - weight**n))
    return out


def is_live(run_dir: str | Path) -> bool:
    """True when `run_dir/metrics.jsonl` changed within LIVE_WINDOW_S and its last line is no end record.

    Reads only the file's tail, so it is cheap enough to ask on every refresh.
    """
    p = Path(run_dir) / METRICS_FILE
    if not (p.is_file() and time.time() - p.stat().st_mtime < LIVE_WINDOW_S):
        return False
    with open(p, "rb") as f:
        f.seek(max(0, p.stat().st_size - 512))
        tail = f.read().decode("utf-8", errors="replace").strip().splitlines()
    try:
        return not (tail and "end" in json.loads(tail[-1]))
    except (json.JSONDecodeError, TypeError, RecursionError):
        return True  # mid-line: being written


def list_runs(runs_root: str | Path, roots: tuple[Path, ...] | None = None) -> list[Path]:
    """Folders at or below `runs_root` (up to MAX_DEPTH deep) holding a metrics.jsonl, sorted.

    Links are followed only where they resolve inside `roots` (default: the runs root itself): a link to
    / placed in a runs folder is neither walked nor listed, and neither is a metrics.jsonl that is itself
    a link out. Hidden folders (".name") are not walked.
    """
    root = Path(runs_root)
    if not root.is_dir():
        return []
    allowed = tuple(Path(r).resolve() for r in (roots or (root,)))
    found = []

    def walk(folder: Path, depth: int) -> None:
        log = folder / METRICS_FILE
        if log.is_file() and inside(log, allowed):
            found.append(folder)
        if depth == MAX_DEPTH:
            return
        try:
            subs = [Path(e.path) for e in os.scandir(folder) if not e.name.startswith(".") and e.is_dir()]
        except OSError:  # unreadable folder: nothing below it is listed
            return
        for sub in subs:
            if inside(sub, allowed):
                walk(sub, depth + 1)

    if inside(root, allowed):
        walk(root, 0)
    return sorted(set(found))


def run_name(run_dir: Path, runs_root: Path) -> str:
    """Display name: the path below the runs root, or the folder name for the root itself (printable)."""
    try:
        rel = Path(run_dir).resolve().relative_to(Path(runs_root).resolve())
    except ValueError:
        return printable(Path(run_dir).name)
    return printable(rel.as_posix() if rel.parts else Path(run_dir).resolve().name)


def load_run(run_dir: str | Path, name: str | None = None) -> RunData:
    """Read `run_dir/metrics.jsonl` into a RunData; broken lines are skipped and listed in `bad_lines`, values
    that are not finite numbers set to None and listed in `bad_values` (see `read_log`)."""
    path = Path(run_dir) / METRICS_FILE
    bad: list[int] = []
    bad_values: list[tuple[int, str]] = []
    train, evals, events = read_log(path, bad, bad_values)
    end = None
    if events and "end" in events[-1]:
        last_step = max((r["step"] for r in train + evals), default=events[-1]["step"])
        if events[-1]["step"] >= last_step:  # an end record followed by more rows belongs to a resumed run
            end = events[-1]
    events = [e for e in events if "end" not in e]
    return RunData(name or Path(run_dir).name, path, train, evals, path.stat().st_mtime, events, end, bad,
                   bad_values)


def calibration(run: RunData) -> list[dict]:
    """The end-of-run calibration as stages: `[{"stage", "val_miou", "detail"}, ...]`, [] when there was none.

    Each calibration event logs the validation mIoU just before it; the evaluation at (or after) the last
    event's step is the score after it. So a run with both steps reads: trained -> logit adjustment ->
    bias fit, each with the validation mIoU it left behind. A run killed mid-way shows the stages it reached.
    """
    steps = [e for e in run.events if "val_miou_before" in e and ("logit_adjust" in e or "bias_fit" in e)]
    if not steps:
        return []
    stages = [{"stage": "trained", "val_miou": steps[0]["val_miou_before"], "detail": "after the last step"}]
    for i, e in enumerate(steps):
        if "logit_adjust" in e:
            tau = "?" if e["logit_adjust"] is None else f"{e['logit_adjust']:g}"  # None: a bad value in the log
            name, detail = "logit adjustment", f"−{tau} × log(class weight)"
        else:
            name = "bias fit"
            detail = f"{'?' if e['bias_fit'] is None else e['bias_fit']} held-out frames"
            if e.get("heldout_miou_before") is not None and e.get("heldout_miou_after") is not None:
                held = (100 * e["heldout_miou_before"], 100 * e["heldout_miou_after"])
                detail += f", their mIoU {held[0]:.1f}% → {held[1]:.1f}%"
        nxt = steps[i + 1]["val_miou_before"] if i + 1 < len(steps) else next(
            (r["val_miou"] for r in run.eval if r["step"] >= e["step"] and r.get("val_miou") is not None), None)
        stages.append({"stage": name, "val_miou": nxt, "detail": detail})
    return stages


def elapsed_s(train_rows: list[dict]) -> list[float | None]:
    """Seconds since the first train row for each row.

    "time" is accepted either as seconds since the start or as a Unix timestamp (values past 1e9).
    """
    times = [r.get("time") for r in train_rows]
    first = next((t for t in times if t is not None), None)
    if first is None:
        return [None] * len(times)
    offset = first if first > 1e9 else 0.0
    return [None if t is None else t - offset for t in times]


def summarize(run: RunData) -> dict:
    """One summary row: steps, last and best loss, best val mIoU / pixel acc, mean img/s, duration (s).

    Missing figures are None (e.g. no evaluation yet).
    """
    losses = [r["loss"] for r in run.train if r.get("loss") is not None and math.isfinite(r["loss"])]
    mious = [r["val_miou"] for r in run.eval if r.get("val_miou") is not None]
    accs = [r["val_pixel_acc"] for r in run.eval if r.get("val_pixel_acc") is not None]
    speeds = [r["img_per_s"] for r in run.train if r.get("img_per_s")]
    times = [t for t in elapsed_s(run.train) if t is not None]
    steps = max((r["step"] for r in run.train + run.eval), default=None)
    return {
        "run": run.name,
        "steps": steps,
        "last_loss": losses[-1] if losses else None,
        "best_loss": min(losses) if losses else None,
        "best_miou": max(mious) if mious else None,
        "best_pixel_acc": max(accs) if accs else None,
        "img_per_s": sum(speeds) / len(speeds) if speeds else None,
        "duration_s": max(times) if times else None,
        "live": run.live,
        "status": run.status,
    }
