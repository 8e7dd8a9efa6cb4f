"""`python -m seg.evaluate [--data DIR] [--checkpoint FILE] [--json]`: score a model on a split."""
import os
import sys

from seg.evaluate.cli import main

try:
    sys.exit(main())
except BrokenPipeError:  # `... --json | head` closed the pipe: not an error of ours
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit flush
    sys.exit(0)
