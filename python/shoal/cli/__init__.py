"""The ``shoal`` status tool (``shoal status``, ``pools``, ``ports --held``, ``processes``,
``top``): the entry point of the ``shoal`` console script and ``python -m shoal.cli``, which
run the binary bundled in the package (built from capi/src/tools with the library linked in)
with the given arguments. ``shoal --help`` lists them."""

import os
import sys

from .._daemon import _find_binary

__all__ = ["find_shoal_tool", "main"]


def find_shoal_tool(use_path=True):
    """Path of the ``shoal`` tool binary: $SHOAL_TOOL; the copy bundled in the package
    (shoal/_bin/shoal); the CMake build tree of a source checkout (build/shoal); a
    ``shoal`` binary (not this console script) on $PATH. Raises FileNotFoundError."""
    path, candidates = _find_binary("shoal", "SHOAL_TOOL", use_path)
    if path is None:
        raise FileNotFoundError("the shoal tool binary was not found (looked at: %s); reinstall "
                                "shoal with `pip install .`, or set $SHOAL_TOOL to its path"
                                % ", ".join(candidates))
    return path


def main(argv=None):
    """Run the bundled shoal tool with `argv` (default: sys.argv[1:]); replaces this process."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        exe = find_shoal_tool(use_path=False)
    except FileNotFoundError as e:
        print("shoal: %s" % e, file=sys.stderr)
        return 127
    os.execv(exe, [exe] + argv)
    return 127  # not reached
