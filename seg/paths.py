"""Default locations of the bundled artifacts, and confinement of user-typed paths."""
from __future__ import annotations

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
