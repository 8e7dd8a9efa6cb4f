"""`python -m seg.predict IMAGES... --out DIR`: segment images, folders and clips (seg.infer.predict_cli).

`from seg.predict import Predictor` keeps working for scripts written before the library moved to packages.
"""
import sys

from seg.infer.predict_cli import main  # noqa: F401
from seg.infer.predictor import Prediction, Predictor  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
