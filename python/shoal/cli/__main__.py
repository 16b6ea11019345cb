"""python -m shoal.cli ARGS: run the bundled shoal tool (see shoal --help)."""

import sys

from . import main

sys.exit(main())
