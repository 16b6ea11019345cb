"""Build of the shoal Python package (metadata lives in pyproject.toml).

`pip install .` runs this:
  * cffi (API mode) compiles the extension shoal._shoal_cffi from
    python/shoal/_build_cffi.py, which reads capi/include/shoal.h and compiles the
    library sources (capi/src/core, capi/src/runtime) into it;
  * the CPython extension shoal._payload (python/shoal/_payload.c): the buffer exporter
    of chunk payloads, used by both backends (cffi and SWIG), depends on neither;
  * build_ext also compiles the daemon (capi/src/core + capi/src/daemon) and the
    `shoal` status tool (capi/src/tools + the library sources) with the system C
    compiler into the package as shoal/_bin/shoald and shoal/_bin/shoal, run by the
    `shoald` and `shoal` console scripts, `python -m shoal.daemon` and `python -m shoal.cli`.

Without a working C compiler a build stops at once with one line saying so (a prebuilt
wheel, `pip wheel .` + `auditwheel repair`, installs without one); `sdist` and the
metadata commands need none.

From a source tree without installing: `python setup.py build_ext --inplace`
puts both into python/shoal/, then `PYTHONPATH=python python -m pytest tests/python`.
"""

import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


_BUILD_COMMANDS = {"build", "build_ext", "build_clib", "bdist", "bdist_wheel", "bdist_egg",
                   "install", "develop", "editable_wheel"}


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
    """The C compiler build_ext uses too ($CC, else the one Python was built with), if it
    works; else a clear one-line reason (SystemExit), not a traceback from deep in the build."""
    if os.environ.get("CC"):
        tried = ["$CC=%r" % os.environ["CC"]]
        cands = [os.environ["CC"]]
    else:
        cands = []
        for c in (sysconfig.get_config_var("CC"), "cc", "gcc", "clang"):
            if c and c not in cands:
                cands.append(c)
        tried = cands
    for cand in cands:
        cmd = shlex.split(cand)
        if not cmd or not shutil.which(cmd[0]):
            continue
        try:  # a preprocessor run is enough to show the compiler runs at all
            probe = subprocess.run(cmd + ["-E", "-x", "c", "-"], input=b"int shoal_probe;\n",
                                   capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return cmd
    sys.exit("shoal: building from source needs a working C compiler and none was found (tried "
             "%s): install one (Debian: apt-get install gcc python3-dev) or set $CC, or install "
             "a prebuilt wheel instead (pip install --only-binary=:all: shoal)" % ", ".join(tried))


def _check_build_tools():
    """Fail early, in one line, when this build cannot compile."""
    cc = _c_compiler()
    include = sysconfig.get_paths().get("include") or ""
    if not os.path.exists(os.path.join(include, "Python.h")):
        sys.exit("shoal: building from source needs Python's C headers (Python.h, not found in "
                 "%s): install them (Debian: apt-get install python3-dev)" % include)
    # the cffi build script and build_ext then use the very compiler that was probed
    if not os.environ.get("CC") and shutil.which(cc[0]) and cc[0] != shlex.split(
            sysconfig.get_config_var("CC") or "cc")[0]:
        os.environ["CC"] = " ".join(shlex.quote(c) for c in cc)
    return cc


# Binaries bundled in the package (shoal/_bin): name -> (source dirs of capi/src, extra sources).
# Both are linked statically against the library sources, so the package needs no libshoal.so.
_BINARIES = {
    "shoald": (("core", "daemon"), ()),
    "shoal": (("core", "runtime"), (os.path.join("capi", "src", "tools", "shoal_cli.c"),)),
}


class build_ext_with_daemon(build_ext):
    """build_ext that also builds the shoald daemon and the shoal tool into the package."""

    def run(self):
        super().run()
        for name in _BINARIES:
            self.build_binary(name)

    def build_binary(self, name):
        if self.inplace:
            dest_dir = os.path.join(ROOT, "python", "shoal", "_bin")
        else:
            dest_dir = os.path.join(self.build_lib, "shoal", "_bin")
        dest = os.path.join(dest_dir, name)
        subdirs, extra = _BINARIES[name]
        sources = []
        for sub in subdirs:
            sources += sorted(glob.glob(os.path.join(ROOT, "capi", "src", sub, "*.c")))
        sources += [os.path.join(ROOT, e) for e in extra]
        missing = [s for s in sources if not os.path.exists(s)]
        if missing or (name == "shoald" and not any(
                s.endswith(os.sep + "main.c") for s in sources)):
            sys.exit("shoal: cannot build %s: missing source %s" % (
                name, ", ".join(missing) or "capi/src/daemon/main.c"))
        headers = glob.glob(os.path.join(ROOT, "capi", "include", "*.h")) + \
            glob.glob(os.path.join(ROOT, "capi", "src", "*", "*.h"))
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
        self.announce("building %s: %s" % (name, " ".join(cmd)), level=2)
        self.spawn(cmd)


_building = any(arg in _BUILD_COMMANDS for arg in sys.argv[1:])
if _building:
    _check_build_tools()
# Without a compiler, metadata and sdist commands still work; the cffi build script
# (which runs the preprocessor over shoal.h) is only loaded when it can run.
_can_compile = _building
if not _building:
    try:
        _c_compiler()
        _can_compile = True
    except SystemExit:
        pass

setup(
    version=_version(),
    # Keep setuptools' intermediate files apart from the CMake build tree in build/.
    options={"build": {"build_base": os.path.join("build", "python")}},
    cffi_modules=["python/shoal/_build_cffi.py:ffibuilder"] if _can_compile else [],
    ext_modules=[Extension("shoal._payload", ["python/shoal/_payload.c"],
                           extra_compile_args=["-std=c11", "-Wall", "-Wextra",
                                               "-Wno-missing-field-initializers"])],
    cmdclass={"build_ext": build_ext_with_daemon},
)
