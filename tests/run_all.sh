#!/usr/bin/env bash
# Runs every test: the C build with its cmocka/ctest suite (which also runs
# the C++, Java/SWIG and Rust binding tests where their tools exist), the C
# suite again under ASan+UBSan, then the Python package installed with pip
# and its pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${SHOAL_BUILD_DIR:-build}
JOBS=${JOBS:-2}

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$BUILD" -j"$JOBS"
ctest --test-dir "$BUILD" --output-on-failure -j1

# Soak: kill waves against a busy domain for SHOAL_SOAK_SECONDS (default 120;
# 0 skips it); no chunk lost, no memory growth (docs/internals.md).
if [ "${SHOAL_SOAK_SECONDS:-120}" != 0 ]; then
  SHOAL_BUILD_DIR="$BUILD" bash tests/soak.sh "${SHOAL_SOAK_SECONDS:-120}"
fi

# The C suite again under AddressSanitizer + UndefinedBehaviorSanitizer
# (SHOAL_SANITIZERS=0 skips it; SHOAL_TSAN=1 adds a ThreadSanitizer pass).
if [ "${SHOAL_SANITIZERS:-1}" != 0 ]; then
  cmake -S . -B "$BUILD-asan" -DSHOAL_SANITIZE=address -DSHOAL_BUILD_BINDINGS=OFF \
        -DSHOAL_BUILD_BENCH=OFF -DSHOAL_BUILD_EXAMPLES=ON
  cmake --build "$BUILD-asan" -j"$JOBS"
  ctest --test-dir "$BUILD-asan" --output-on-failure -j1 -L c
fi
if [ "${SHOAL_TSAN:-0}" != 0 ]; then
  cmake -S . -B "$BUILD-tsan" -DSHOAL_SANITIZE=thread -DSHOAL_BUILD_BINDINGS=OFF \
        -DSHOAL_BUILD_BENCH=OFF -DSHOAL_BUILD_EXAMPLES=ON
  cmake --build "$BUILD-tsan" -j"$JOBS"
  ctest --test-dir "$BUILD-tsan" --output-on-failure -j1 -L c
fi

# Coverage-guided fuzzing, a short run of each harness (tests/fuzz/run.sh;
# skipped with a message where clang or libFuzzer is missing;
# SHOAL_FUZZ_SECONDS=0 skips it, a larger value runs longer).
if [ "${SHOAL_FUZZ_SECONDS:-60}" != 0 ]; then
  SHOAL_FUZZ_BUILD="$BUILD-fuzz" tests/fuzz/run.sh "${SHOAL_FUZZ_SECONDS:-60}"
fi

if [ -f pyproject.toml ]; then
  python3 -m pip install -q .
  python3 -m pytest -q tests/python
  # what a user does: a fresh virtual environment, pip install, a first program
  VENV=$(mktemp -d /tmp/shoal-venv.XXXXXX)
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q .
  (cd "$VENV" && "$VENV/bin/python" -c '
import shoal
with shoal.Daemon(domain="venvcheck", pools={64: 16}) as d:
    with shoal.Runtime("venv", domain="venvcheck") as rt:
        srv, cli = rt.server("echo"), rt.client("echo")
        with cli.loan(5) as req:
            req.payload[:] = b"hello"
            seq = req.send()
        with srv.take(timeout=1.0) as r:
            with r.loan_response(5) as resp:
                resp.payload[:] = r.payload
                resp.send()
        with cli.take(timeout=1.0) as resp:
            assert resp.sequence_id == seq and bytes(resp.payload) == b"hello"
print("fresh venv: pip install . and a first program work")
' && "$VENV/bin/shoald" --version)
  rm -rf "$VENV"
fi
echo "all tests passed"
