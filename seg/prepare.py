"""`python -m seg.prepare --src RAW --dst OUT`: downsize a Vistas-layout dataset (seg.data.prepare)."""
import sys

from seg.data.prepare import main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
