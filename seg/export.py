"""`python -m seg.export CHECKPOINT --out model.onnx`: export and verify the ONNX graph (seg.infer.export_cli)."""
import sys

from seg.infer.export_cli import main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
