"""Default locations of the bundled artifacts, confinement of paths to allowed folders, names fit for display."""
from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUN_DIR = REPO_ROOT / "checkpoints" / "demo"
DEFAULT_CHECKPOINT = DEFAULT_RUN_DIR / "model.pt"
DEFAULT_DATA = REPO_ROOT / "assets" / "synth_vistas"
SAMPLE_FRAMES = REPO_ROOT / "assets" / "kitti_samples"


def resolve_under(root: str | Path, user_path: str | Path) -> Path:
    """Resolve `user_path` (absolute, or relative to `root`) and require it to lie inside `root`.

    Symlinks and `..` are resolved first, so neither can lead outside. Raises ValueError otherwise.
    """
    root = Path(root).resolve()
    p = Path(user_path)
    p = (p if p.is_absolute() else root / p).resolve()
    if p != root and root not in p.parents:
        raise ValueError(f"{user_path}: outside the allowed folder {root}")
    return p


def inside(path: str | Path, roots: tuple[Path, ...]) -> bool:
    """True when `path`, with every link and `..` resolved, lies in one of `roots` (or is one of them)."""
    try:
        real = Path(path).resolve()
        allowed = [Path(r).resolve() for r in roots]
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        return False
    return any(real == r or r in real.parents for r in allowed)


def printable(text: str) -> str:
    """`text` with undecodable file-name bytes (lone surrogates, e.g. from b"\\xff\\xfe") shown as U+FFFD.

    Such names are valid paths, but a web page (protobuf) or a UTF-8 stream refuses to encode them.
    """
    return _SURROGATES.sub("\ufffd", str(text))


_SURROGATES = re.compile("[\ud800-\udfff]")
