"""shoald from Python: ``shoal.daemon.Daemon`` (also ``shoal.Daemon``), and the entry
point of the ``shoald`` console script and ``python -m shoal.daemon``, which run the
shoald binary bundled in the package with the given arguments."""

from .._daemon import Daemon, config_text, find_shoald, main

__all__ = ["Daemon", "config_text", "find_shoald", "main"]
