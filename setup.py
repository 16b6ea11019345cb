"""Build of the shoal Python package (metadata lives in pyproject.toml).

`pip install .` runs this:
  * cffi (API mode) compiles the extension shoal._shoal_cffi from
    python/shoal/_build_cffi.py, which reads capi/include/shoal.h and compiles the
    library sources (capi/src/core, capi/src/runtime) into it;
  * the CPython extension shoal._payload (python/shoal/_payload.c): the buffer exporter
    of chunk payloads, used by both backends (cffi and SWIG), depends on neither;
  * build_ext also compiles the daemon (capi/src/core + capi/src/daemon) with the
    system C compiler into the package as shoal/_bin/shoald, run by the `shoald`
    console script and `python -m shoal.daemon`.

From a source tree without installing: `python setup.py build_ext --inplace`
puts both into python/shoal/, then `PYTHONPATH=python python -m pytest tests/python`.
"""

import glob
import os
import re
import shlex
import shutil
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


def _version():
    """The package's version is the C library's: capi/include/shoal.h is the one source."""
    with open(os.path.join(ROOT, "capi", "include", "shoal.h")) as f:
        text = f.read()
    parts = []
    for part in ("MAJOR", "MINOR", "PATCH"):
        m = re.search(r"^#define SHOAL_VERSION_%s (\d+)$" % part, text, re.M)
        if not m:
            raise RuntimeError("capi/include/shoal.h has no '#define SHOAL_VERSION_%s N' line" % part)
        parts.append(m.group(1))
    return ".".join(parts)


def _c_compiler():
    for cand in (os.environ.get("CC"), sysconfig.get_config_var("CC"), "cc", "gcc", "clang"):
        if cand:
            cmd = shlex.split(cand)
            if shutil.which(cmd[0]):
                return cmd
    raise RuntimeError("no C compiler found (set $CC)")


class build_ext_with_daemon(build_ext):
    """build_ext that also builds the shoald binary into the package."""

    def run(self):
        super().run()
        self.build_shoald()

    def build_shoald(self):
        if self.inplace:
            dest_dir = os.path.join(ROOT, "python", "shoal", "_bin")
        else:
            dest_dir = os.path.join(self.build_lib, "shoal", "_bin")
        dest = os.path.join(dest_dir, "shoald")
        sources = []
        for sub in ("core", "daemon"):
            sources += sorted(glob.glob(os.path.join(ROOT, "capi", "src", sub, "*.c")))
        headers = glob.glob(os.path.join(ROOT, "capi", "include", "*.h")) + \
            glob.glob(os.path.join(ROOT, "capi", "src", "*", "*.h"))
        if not any(s.endswith(os.sep + "main.c") for s in sources):
            raise RuntimeError("capi/src/daemon/main.c is missing: cannot build shoald")
        if os.path.exists(dest) and not self.force:
            newest = max(os.path.getmtime(p) for p in sources + headers)
            if os.path.getmtime(dest) >= newest:
                return
        os.makedirs(dest_dir, exist_ok=True)
        cmd = _c_compiler() + [
            "-std=c11", "-O2", "-g", "-pthread", "-D_GNU_SOURCE", "-DSHOAL_BUILDING_LIBRARY",
            "-I" + os.path.join(ROOT, "capi", "include"), "-I" + os.path.join(ROOT, "capi", "src"),
            "-o", dest,
        ] + sources + ["-pthread"]
        self.announce("building shoald: " + " ".join(cmd), level=2)
        self.spawn(cmd)


setup(
    version=_version(),
    # Keep setuptools' intermediate files apart from the CMake build tree in build/.
    options={"build": {"build_base": os.path.join("build", "python")}},
    cffi_modules=["python/shoal/_build_cffi.py:ffibuilder"],
    ext_modules=[Extension("shoal._payload", ["python/shoal/_payload.c"],
                           extra_compile_args=["-std=c11", "-Wall", "-Wextra",
                                               "-Wno-missing-field-initializers"])],
    cmdclass={"build_ext": build_ext_with_daemon},
)
