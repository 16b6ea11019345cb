"""The ``shoal`` status tool (``shoal status``, ``pools``, ``ports --held``, ``processes``,
``top``): the entry point of the ``shoal`` console script and ``python -m shoal.cli``, which
run the binary bundled in the package (built from capi/src/tools with the library linked in)
with the given arguments. ``shoal --help`` lists them."""

import os
import shutil
import sys

__all__ = ["find_shoal_tool", "main"]

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def find_shoal_tool(use_path=True):
    """Path of the ``shoal`` tool binary: $SHOAL_TOOL; the copy bundled in the package
    (shoal/_bin/shoal); the CMake build tree of a source checkout (build/shoal); a
    ``shoal`` binary (not this console script) on $PATH. Raises FileNotFoundError."""
    candidates = []
    if os.environ.get("SHOAL_TOOL"):
        candidates.append(os.environ["SHOAL_TOOL"])
    candidates.append(os.path.join(_PKG, "_bin", "shoal"))
    candidates.append(os.path.join(_PKG, os.pardir, os.pardir, "build", "shoal"))
    if use_path:
        found = shutil.which("shoal")
        if found:
            candidates.append(found)
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK) and _is_elf(c):
            return os.path.abspath(c)
    raise FileNotFoundError("the shoal tool binary was not found (looked at: %s); reinstall "
                            "shoal with `pip install .`, or set $SHOAL_TOOL to its path"
                            % ", ".join(candidates))


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
