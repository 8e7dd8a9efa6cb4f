"""Training: flags and presets, the step loop, calibration, torchrun support, the run lock and run logs."""
