"""`python -m seg.datastats --data DIR`: per-class pixel shares of a split (seg.data.stats)."""
import sys

from seg.data.stats import main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
