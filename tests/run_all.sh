#!/usr/bin/env bash
# Runs every test: the C build with its cmocka/ctest suite (which also runs
# the C++, Java/SWIG and Rust binding tests where their tools exist), then
# the Python package installed with pip and its pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${SHOAL_BUILD_DIR:-build}
JOBS=${JOBS:-2}

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$BUILD" -j"$JOBS"
ctest --test-dir "$BUILD" --output-on-failure -j1

if [ -f pyproject.toml ]; then
  python3 -m pip install -q .
  python3 -m pytest -q tests/python
fi
echo "all tests passed"
