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

if [ -f pyproject.toml ]; then
  python3 -m pip install -q .
  python3 -m pytest -q tests/python
fi
echo "all tests passed"
