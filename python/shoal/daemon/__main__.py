"""python -m shoal.daemon ARGS: run the bundled shoald (see shoald --help)."""

import sys

from .._daemon import main

sys.exit(main())
