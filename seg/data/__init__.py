"""Datasets: the Vistas layout (`vistas`), the synthetic world as datasets (`synthetic`), the v2 transforms
(`transforms`), sample frames for checks (`samples`), downsizing (`prepare`) and class statistics (`stats`).

Import from the modules themselves: this package loads none of them, so `seg.data.prepare` (`python -m
seg.prepare` and its worker processes, numpy and Pillow only) does not pay torch's import.
"""
