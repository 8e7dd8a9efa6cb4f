"""`python -m seg.train --data DIR --out RUN`: train a segmentation model."""
import sys

from seg.train.main import cli

sys.exit(cli())
