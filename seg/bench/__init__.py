"""The benchmark behind the speed figures (`python -m seg.bench`)."""
