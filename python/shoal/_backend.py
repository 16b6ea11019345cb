"""Selects the backend the Pythonic layer runs on (see BACKEND.md).

``SHOAL_PYTHON_BACKEND`` chooses it: ``cffi`` (default) or ``swig``.
"""

import importlib
import os

_KNOWN = {"cffi": "shoal._backend_cffi", "swig": "shoal._backend_swig"}


def load(name=None):
    """Import and return the backend module called `name` (default: from the environment)."""
    name = (name or os.environ.get("SHOAL_PYTHON_BACKEND") or "cffi").strip().lower()
    try:
        modname = _KNOWN[name]
    except KeyError:
        raise ImportError("SHOAL_PYTHON_BACKEND=%r: unknown backend (known: %s)"
                          % (name, ", ".join(sorted(_KNOWN)))) from None
    try:
        return importlib.import_module(modname)
    except ImportError as e:
        hint = ("build it with `pip install .` or, in a source tree, "
                "`python setup.py build_ext --inplace`") if name == "cffi" else \
            "is the SWIG module built and on sys.path?"
        raise ImportError("shoal: cannot load the %s backend (%s): %s" % (name, modname, e)
                          + "; " + hint) from e
