"""`python -m seg.bench [--json FILE] [--quick]`: the benchmark behind the speed figures."""
import sys

from seg.bench.report import main

sys.exit(main())
