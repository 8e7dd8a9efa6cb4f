"""Training (`python -m seg.train`): flags and presets (config), data and model set-up (setup), the loss,
validation and schedule (engine), the step loop (trainer), the command (main), calibration, torchrun
support (distributed), the run lock (runlock), the run folder's files and the metrics log's writer
(runfiles) and its reader (runlog)."""
