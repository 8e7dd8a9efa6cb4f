"""Appearance palettes of the street world: the training style and a held-out style.

Every appearance choice that tells one look from another (facade paints, car paints, asphalt and
sidewalk tones, foliage colours, sky tint, camera colour cast, wall texture family) is drawn from a
`Style`. Training frames always use `IN`; `OUT` holds appearance that training never samples, for an
out-of-style validation set that measures how much a model learned shapes rather than one palette.
The two palettes are disjoint by construction (tests check it): OUT paints are saturated hues that IN
never contains, OUT asphalt is red or pale concrete, OUT foliage is autumn-coloured, OUT's camera casts
lie beyond IN's white-balance range, and OUT walls use a texture family IN never uses.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Style:
    """One appearance: the palettes and textures a frame's looks are drawn from."""

    name: str
    facades: tuple  # base RGB of building walls (then varied by +-12)
    cars: tuple  # base RGB of car paint
    trucks: tuple
    asphalt: tuple  # ((r, g, b) base, (lo, hi) brightness scale)
    sidewalks: tuple
    foliage: tuple  # base greens of trees and hedges
    terrain: tuple
    sky_tint: tuple  # multiplies the sky colours
    cast: tuple  # (lo, hi) magnitude of the camera's white-balance error
    wall_textures: tuple  # material names for plastered walls
    ground_grain: str  # texture field name for asphalt grain


IN = Style(
    name="in",
    facades=((200, 190, 170), (225, 220, 205), (170, 100, 80), (150, 85, 70), (190, 170, 140), (140, 140, 140),
             (210, 200, 185), (120, 110, 100), (230, 215, 180), (175, 180, 185), (160, 120, 90), (95, 95, 100),
             (240, 238, 232), (185, 150, 120), (110, 70, 60), (205, 205, 200), (165, 160, 150), (75, 72, 70)),
    cars=((235, 235, 232), (30, 30, 32), (165, 168, 172), (105, 108, 112), (25, 35, 75), (140, 20, 20),
          (40, 70, 140), (200, 190, 170), (30, 60, 45), (80, 60, 50), (220, 220, 225), (60, 62, 66),
          (190, 195, 200), (15, 15, 18), (120, 30, 35)),
    trucks=((230, 230, 230), (200, 200, 200), (180, 40, 30), (40, 70, 140), (60, 60, 62), (150, 150, 150)),
    asphalt=((1.0, 1.0, 1.04), (55, 125)),
    sidewalks=((175, 170, 160), (150, 150, 150), (190, 180, 165), (160, 110, 95), (130, 130, 125),
               (200, 198, 192), (115, 112, 108)),
    foliage=((60, 90, 40), (75, 100, 45), (45, 70, 35), (90, 110, 50), (55, 80, 50), (70, 85, 35)),
    terrain=((80, 110, 45), (110, 120, 60), (140, 125, 85), (95, 90, 60)),
    sky_tint=(1.0, 1.0, 1.0),
    cast=(0.0, 0.035),
    wall_textures=("plaster", "brick", "concrete"),
    ground_grain="asphalt",
)

OUT = Style(
    name="out",
    facades=((60, 120, 190), (70, 150, 90), (230, 200, 60), (150, 80, 160), (235, 125, 60), (60, 165, 165)),
    cars=((250, 200, 0), (255, 120, 0), (120, 200, 40), (230, 80, 160), (0, 170, 190)),
    trucks=((250, 200, 0), (120, 200, 40), (230, 80, 160)),
    asphalt=((1.35, 0.85, 0.75), (85, 130)),  # red asphalt
    sidewalks=((205, 190, 80), (90, 150, 120), (120, 120, 185)),
    foliage=((170, 90, 30), (190, 140, 40), (140, 50, 30)),  # autumn
    terrain=((170, 140, 60), (150, 100, 50)),
    sky_tint=(1.06, 0.98, 0.8),  # smoggy yellow sky
    cast=(0.1, 0.16),
    wall_textures=("tiles",),
    ground_grain="moon",
)

STYLES = {"in": IN, "out": OUT}


def get_style(name: str) -> Style:
    """The Style called `name` ("in" or "out"); raises ValueError naming the valid ones."""
    if name not in STYLES:
        raise ValueError(f"unknown style {name!r}; valid: {', '.join(STYLES)}")
    return STYLES[name]
