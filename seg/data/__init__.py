"""Datasets: the Vistas layout (`vistas`), the synthetic world as datasets (`synthetic`), the v2 transforms
(`transforms`), sample frames for checks (`samples`), downsizing (`prepare`) and class statistics (`stats`)."""
from seg.data.synthetic import SynthPool, SynthStream  # noqa: F401
from seg.data.transforms import get_transform  # noqa: F401
from seg.data.vistas import DataError, VistasDataset, check_split, list_images, read_label  # noqa: F401
