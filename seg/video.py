"""`python -m seg.video FRAMES... --out clip.mp4`: make a sample clip from frames (seg.infer.sample_clip)."""
import sys

from seg.infer.sample_clip import main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
