"""Where the app reads from: command line, environment, defaults, and the folders a user may point at.

`streamlit run app.py -- --data DIR --runs DIR --checkpoint FILE` wins over the environment
(SEG_DATA, SEG_RUNS, SEG_CHECKPOINT, SEG_SAMPLES), which wins over the bundled defaults. Paths typed in
the sidebar are confined to the allowed roots: the repository plus every folder named on the command line
or in the environment, so a browser user cannot make the server read /etc or a home folder.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from seg.paths import DEFAULT_CHECKPOINT, DEFAULT_DATA, DEFAULT_RUN_DIR, REPO_ROOT, SAMPLE_FRAMES, printable, resolve_under

ENV = {"checkpoint": "SEG_CHECKPOINT", "data": "SEG_DATA", "runs": "SEG_RUNS", "samples": "SEG_SAMPLES"}
DEFAULT_RUNS = DEFAULT_RUN_DIR.parent  # checkpoints/: holds the bundled run checkpoints/demo


@dataclass(frozen=True)
class AppConfig:
    """Resolved starting locations and the roots sidebar paths must stay under."""

    checkpoint: Path
    data: Path
    runs: Path
    samples: Path
    bundled_run: Path
    roots: tuple[Path, ...]


def get_args_parser() -> argparse.ArgumentParser:
    """The app's own flags, given after `--` on the `streamlit run app.py` line."""
    p = argparse.ArgumentParser(
        prog="streamlit run app.py --", description="Street-scene segmentation workbench", add_help=False
    )
    p.add_argument("--checkpoint", help=f"model checkpoint (.pt); env {ENV['checkpoint']}; default {DEFAULT_CHECKPOINT}")
    p.add_argument("--data", help=f"Vistas-layout dataset folder; env {ENV['data']}; default {DEFAULT_DATA}")
    p.add_argument("--runs", help=f"folder holding training runs (metrics.jsonl); env {ENV['runs']}; default {DEFAULT_RUNS}")
    p.add_argument("--samples", help=f"folder of sample frames for the Inference page; env {ENV['samples']}")
    return p


def load_config(argv: list[str] | None = None, environ: dict | None = None) -> AppConfig:
    """Build the AppConfig from `argv` (script arguments after `--`) and `environ`.

    Unknown arguments are ignored: under tests the script sees pytest's own argv.
    """
    environ = os.environ if environ is None else environ
    args, _ = get_args_parser().parse_known_args(argv or [])
    chosen = {}
    given_dirs = []
    defaults = {"checkpoint": DEFAULT_CHECKPOINT, "data": DEFAULT_DATA, "runs": DEFAULT_RUNS, "samples": SAMPLE_FRAMES}
    for key, default in defaults.items():
        value = getattr(args, key) or environ.get(ENV[key])
        if value:
            path = Path(value).expanduser().resolve()
            given_dirs.append(path.parent if key == "checkpoint" else path)
        else:
            path = default
        chosen[key] = path
    roots = tuple(dict.fromkeys([REPO_ROOT.resolve(), *given_dirs]))  # ordered, no duplicates
    return AppConfig(bundled_run=DEFAULT_RUN_DIR, roots=roots, **chosen)


def confine(typed: str | Path, roots: tuple[Path, ...]) -> Path:
    """Resolve a sidebar path, relative paths against the first root, and require it under some root.

    Raises ValueError with a message fit for the user when it escapes every allowed root.
    """
    typed = str(typed).strip()
    if not typed:
        raise ValueError("empty path")
    try:
        user_path = Path(typed).expanduser() if typed.startswith("~") else Path(typed)
    except RuntimeError:  # "~nosuchuser": no home folder to expand to
        raise ValueError(f"'{typed}': unknown user folder") from None
    for root in roots:
        try:
            return resolve_under(root, user_path)
        except ValueError:
            continue
    allowed = ", ".join(str(r) for r in roots)
    raise ValueError(
        f"'{typed}' is outside the folders this app may read ({allowed}). "
        "To use another folder, start the app with: streamlit run app.py -- --data DIR --runs DIR, "
        "or set SEG_DATA / SEG_RUNS / SEG_CHECKPOINT."
    )


def display_path(path: Path) -> str:
    """Short form for captions: relative to the repository when inside it; undecodable bytes shown as U+FFFD."""
    try:
        return printable(Path(path).resolve().relative_to(REPO_ROOT.resolve()).as_posix() or ".")
    except ValueError:
        return printable(path)
