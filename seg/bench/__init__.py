"""The benchmark behind the speed figures (`python -m seg.bench`): inference figures (pipeline), training
throughput (training), and the report, its table and the command (report)."""
