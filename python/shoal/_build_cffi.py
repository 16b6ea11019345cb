"""cffi (API mode) build script for shoal's Python extension.

Used by setup.py through ``cffi_modules=["python/shoal/_build_cffi.py:ffibuilder"]``.

The declarations given to cffi are not retyped: they are produced by running the
C preprocessor over ``capi/include/shoal.h`` (with its ``#include`` lines of the
standard headers removed, since cffi already knows ``size_t``, ``uint32_t``, ...).

The extension compiles the library sources themselves (``capi/src/core/*.c`` and
``capi/src/runtime/*.c``), so the installed package needs no separate
``libshoal.so`` at run time.
"""

import glob
import os
import re
import shlex
import subprocess
import sysconfig

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, os.pardir, os.pardir))
CAPI = os.path.join(ROOT, "capi")
HEADER = os.path.join(CAPI, "include", "shoal.h")


def _compiler():
    """The C compiler to use: $CC, else the one Python was built with, else cc."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cc)


def header_cdef(header=HEADER):
    """Return shoal.h, preprocessed into a form cffi's cdef() parses."""
    with open(header, encoding="utf-8") as f:
        text = f.read()
    # cffi knows the standard integer types; the system headers would only
    # bring declarations it cannot parse.
    text = re.sub(r"^\s*#\s*include\s*<[^>]*>\s*$", "", text, flags=re.M)
    cmd = _compiler() + ["-E", "-P", "-DSHOAL_API=", "-x", "c", "-"]
    try:
        out = subprocess.run(cmd, input=text, capture_output=True, text=True, check=False)
    except OSError as e:  # one line, not a traceback: setup.py says how to get a compiler
        raise SystemExit("shoal: cannot run the C compiler %r (%s): building from source needs "
                         "one (Debian: apt-get install gcc python3-dev; or set $CC), or install a "
                         "prebuilt wheel" % (cmd[0], e.strerror or e))
    if out.returncode != 0:
        raise SystemExit("shoal: preprocessing %s with %s failed:\n%s" % (
            header, " ".join(cmd), out.stderr.strip()))
    return out.stdout


def library_sources():
    """The C sources compiled into the extension (sorted, relative to the repo root)."""
    srcs = []
    for sub in ("core", "runtime"):
        srcs += sorted(glob.glob(os.path.join(CAPI, "src", sub, "*.c")))
    return [os.path.relpath(s, ROOT) for s in srcs]


# One call instead of two for the payload (address, size) every chunk object exports,
# and a loan or take with its payload's address and size in one foreign call.
PY_HELPERS_CDEF = """
typedef struct shoal_py_view { uintptr_t addr; uint64_t size; } shoal_py_view_t;
shoal_py_view_t shoal_py_chunk_view(const shoal_chunk_t *chunk);
typedef struct shoal_py_got { int32_t rc; shoal_chunk_t *chunk; uintptr_t addr; uint64_t size; } shoal_py_got_t;
shoal_py_got_t shoal_py_publisher_loan(shoal_publisher_t *p, uint64_t size);
shoal_py_got_t shoal_py_client_loan(shoal_client_t *p, uint64_t size);
shoal_py_got_t shoal_py_server_loan_response(shoal_server_t *p, const shoal_chunk_t *req, uint64_t size);
shoal_py_got_t shoal_py_subscriber_take(shoal_subscriber_t *p, int64_t timeout_ns);
shoal_py_got_t shoal_py_client_take(shoal_client_t *p, int64_t timeout_ns);
shoal_py_got_t shoal_py_server_take(shoal_server_t *p, int64_t timeout_ns);
"""
PY_HELPERS_SOURCE = """
typedef struct shoal_py_view { uintptr_t addr; uint64_t size; } shoal_py_view_t;
static shoal_py_view_t shoal_py_chunk_view(const shoal_chunk_t *chunk) {
    void *p = shoal_chunk_payload(chunk);
    shoal_py_view_t v = { (uintptr_t)p, p ? shoal_chunk_size(chunk) : 0 };
    return v;
}
/* loan or take + payload address + size in one foreign call */
typedef struct shoal_py_got { int32_t rc; shoal_chunk_t *chunk; uintptr_t addr; uint64_t size; } shoal_py_got_t;
static shoal_py_got_t shoal_py_got(shoal_result_t rc, shoal_chunk_t *c) {
    shoal_py_got_t g = { (int32_t)rc, c, 0, 0 };
    if (rc == SHOAL_OK) {
        void *p = shoal_chunk_payload(c);
        g.addr = (uintptr_t)p;
        g.size = p ? shoal_chunk_size(c) : 0;
    }
    return g;
}
#define SHOAL_PY_GOT(name, call) \
    shoal_chunk_t *c = NULL;    \
    shoal_result_t rc = call;   \
    return shoal_py_got(rc, c)
static shoal_py_got_t shoal_py_publisher_loan(shoal_publisher_t *p, uint64_t size) {
    SHOAL_PY_GOT(publisher_loan, shoal_publisher_loan(p, size, &c));
}
static shoal_py_got_t shoal_py_client_loan(shoal_client_t *p, uint64_t size) {
    SHOAL_PY_GOT(client_loan, shoal_client_loan(p, size, &c));
}
static shoal_py_got_t shoal_py_server_loan_response(shoal_server_t *p, const shoal_chunk_t *req,
                                                    uint64_t size) {
    SHOAL_PY_GOT(server_loan_response, shoal_server_loan_response(p, req, size, &c));
}
static shoal_py_got_t shoal_py_subscriber_take(shoal_subscriber_t *p, int64_t t) {
    SHOAL_PY_GOT(subscriber_take, shoal_subscriber_take(p, &c, t));
}
static shoal_py_got_t shoal_py_client_take(shoal_client_t *p, int64_t t) {
    SHOAL_PY_GOT(client_take, shoal_client_take(p, &c, t));
}
static shoal_py_got_t shoal_py_server_take(shoal_server_t *p, int64_t t) {
    SHOAL_PY_GOT(server_take, shoal_server_take(p, &c, t));
}
"""

ffibuilder = FFI()
ffibuilder.cdef(header_cdef() + PY_HELPERS_CDEF)
ffibuilder.set_source(
    "shoal._shoal_cffi",
    '#include "shoal.h"\n' + PY_HELPERS_SOURCE,
    sources=library_sources(),
    include_dirs=[os.path.relpath(os.path.join(CAPI, "include"), ROOT),
                  os.path.relpath(os.path.join(CAPI, "src"), ROOT)],
    # pyconfig.h defines _GNU_SOURCE as 1; use the same value to avoid a redefinition.
    define_macros=[("_GNU_SOURCE", "1"), ("SHOAL_BUILDING_LIBRARY", None)],
    extra_compile_args=["-std=c11", "-fvisibility=hidden", "-pthread"],
    extra_link_args=["-pthread"],
    libraries=["pthread"],
)

if __name__ == "__main__":
    # Build in place for development: python python/shoal/_build_cffi.py
    os.chdir(ROOT)
    ffibuilder.compile(tmpdir=os.path.join(ROOT, "build", "python-cffi"), verbose=True)
