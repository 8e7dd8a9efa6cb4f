"""`python -m seg.synth --out DIR`: write the procedural street world in the Vistas layout."""
import sys

from seg.synth.world import main

sys.exit(main())
