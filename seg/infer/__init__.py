"""Inference: deployment geometry, exact label upsampling, ONNX export and runtime, the Predictor, clips."""
