"""The procedural street world in the Vistas layout: `render(seed, size, style)` and the dataset writers.

Modules: `objects` (class ids, canvas, shapes), `ground`/`scene`/`populate`/`props`/`road_users` (what is
drawn), `style` (the looks), `camera` (lens effects), `world` (one frame, the dataset writer and the CLI).
"""
from seg.synth.scene import sample_scene  # noqa: F401
from seg.synth.world import (RENDERED_CLASSES, SPLITS, frame_seed, render, write_dataset, write_images,  # noqa: F401
                             write_preview)
