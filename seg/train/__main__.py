"""`python -m seg.train --data DIR --out RUN`: train a segmentation model."""
import sys

from seg.train.loop import cli

sys.exit(cli())
