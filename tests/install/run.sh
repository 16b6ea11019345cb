#!/usr/bin/env bash
# Issue 14.1/14.2/14.5: what `cmake --install` puts on a machine, used as a user would.
#
#   run.sh BUILD_DIR [WORK_DIR]
#
# 1. installs the build into a staging tree (DESTDIR=WORK/stage, prefix /usr, as a
#    package build does) and checks the files: libshoal with its soname, shoal.h,
#    shoal.hpp, shoald, shoal, shoal.pc, the CMake package, man pages, the systemd
#    unit, sysusers.d file and default config;
# 2. builds a consumer project (tests/install/consumer) out of tree against the
#    staged prefix both ways: find_package(shoal CONFIG) and pkg-config;
# 3. starts the staged shoald (--ready-fd), runs both consumers of each build and
#    the staged `shoal` tool against it, stops it;
# 4. checks the unit with systemd-analyze verify, where systemd is installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
work=${2:-$build/install-test}
rm -rf "$work"
mkdir -p "$work"
fail() { echo "install test: FAILED: $*" >&2; exit 1; }
step() { printf '\n== install: %s\n' "$*"; }

step "cmake --install (DESTDIR staging, prefix /usr)"
DESTDIR="$work/stage" cmake --install "$build" --prefix /usr >"$work/install.log" \
  || { cat "$work/install.log"; fail "cmake --install"; }
prefix="$work/stage/usr"
libdir=$(cd "$prefix" && dirname "$(find . -name 'libshoal.so.0' | head -1)")
[ "$libdir" != . ] || fail "libshoal.so.0 was not installed"
libdir="$prefix/${libdir#./}"
for f in include/shoal.h include/shoal.hpp bin/shoald bin/shoal; do
  [ -e "$prefix/$f" ] || fail "$f was not installed"
done
for f in libshoal.so libshoal.so.0 pkgconfig/shoal.pc cmake/shoal/shoalConfig.cmake \
         cmake/shoal/shoalConfigVersion.cmake cmake/shoal/shoalTargets.cmake; do
  [ -e "$libdir/$f" ] || fail "$libdir/$f was not installed"
done
for f in share/man/man8/shoald.8 share/man/man1/shoal.1 lib/systemd/system/shoald@.service \
         lib/sysusers.d/shoal.conf; do
  [ -e "$prefix/$f" ] || fail "$f was not installed"
done
[ -e "$work/stage/etc/shoal/default.conf" ] || fail "/etc/shoal/default.conf was not installed"
soname=$(objdump -p "$libdir/libshoal.so.0" | awk '$1 == "SONAME" {print $2}')
[ "$soname" = libshoal.so.0 ] || fail "libshoal's soname is '$soname', not libshoal.so.0"
grep -q "^ExecStart=/usr/bin/shoald --domain %i --config /etc/shoal/%i.conf --runtime-dir /run/shoal" \
  "$prefix/lib/systemd/system/shoald@.service" || fail "the unit's ExecStart does not use the install paths"
grep -q "^Type=notify" "$prefix/lib/systemd/system/shoald@.service" || fail "the unit is not Type=notify"
"$prefix/bin/shoald" --config "$work/stage/etc/shoal/default.conf" --print-config >/dev/null \
  || fail "the installed default.conf is not a valid configuration"
(cd "$work/stage" && find . -type f -o -type l | sort | sed 's|^\./|  |')
mkdir -p "$work/man-pages"
cp "$prefix/share/man/man8/shoald.8" "$prefix/share/man/man1/shoal.1" "$work/man-pages/"
bash "$here/check_man.sh" "$prefix/bin/shoald" "$prefix/bin/shoal" "$work/man-pages"

step "consumer via find_package(shoal CONFIG)"
cmake -S "$here/consumer" -B "$work/consumer-cmake" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release >"$work/consumer-cmake.log" 2>&1 \
  || { cat "$work/consumer-cmake.log"; fail "configuring the consumer with find_package(shoal)"; }
cmake --build "$work/consumer-cmake" >>"$work/consumer-cmake.log" 2>&1 \
  || { cat "$work/consumer-cmake.log"; fail "building the consumer with find_package(shoal)"; }
shoald_path=$(cat "$work/consumer-cmake/shoald_path.txt")
[ "$shoald_path" -ef "$prefix/bin/shoald" ] || fail "shoal::shoald is $shoald_path, not the staged one"

step "consumer via pkg-config"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
[ "$(pkg-config --modversion shoal)" = "$("$prefix/bin/shoald" --version | awk '{print $2}')" ] \
  || fail "pkg-config --modversion shoal: $(pkg-config --modversion shoal)"
cflags=$(pkg-config --cflags shoal) libs=$(pkg-config --libs shoal)
echo "pkg-config --cflags --libs shoal: $cflags $libs"
mkdir -p "$work/consumer-pc"
${CC:-cc} -std=c11 -Wall -Wextra -Werror -pedantic $cflags "$here/consumer/consumer.c" $libs \
  -o "$work/consumer-pc/consumer_c"
${CXX:-c++} -std=c++17 -Wall -Wextra -Werror -pedantic $cflags "$here/consumer/consumer.cpp" $libs \
  -o "$work/consumer-pc/consumer_cpp"

step "against the staged shoald"
export SHOAL_DOMAIN="install-test-$$" SHOAL_RUNTIME_DIR="$work/run"
mkfifo "$work/ready"
"$prefix/bin/shoald" --log-level warn --ready-fd 3 3>"$work/ready" 2>"$work/shoald.log" &
daemon=$!
trap 'kill $daemon 2>/dev/null || true' EXIT
ready=$(timeout 20 head -n1 "$work/ready" || true)
[ "$ready" = ready ] || { cat "$work/shoald.log"; fail "the staged shoald did not become ready"; }
for exe in "$work/consumer-cmake/consumer_c" "$work/consumer-cmake/consumer_cpp"; do
  "$exe" || fail "$exe"   # found libshoal by the rpath CMake gave it
done
for exe in "$work/consumer-pc/consumer_c" "$work/consumer-pc/consumer_cpp"; do
  LD_LIBRARY_PATH="$libdir" "$exe" || fail "$exe"
  LD_LIBRARY_PATH="$libdir" ldd "$exe" | grep -q "libshoal.so.0 => $libdir/libshoal.so.0" \
    || fail "$exe does not load the staged libshoal.so.0"
done
env -u LD_LIBRARY_PATH "$prefix/bin/shoal" status >"$work/status.txt" \
  || { cat "$work/status.txt"; fail "the staged shoal tool"; }
grep -q "$SHOAL_DOMAIN" "$work/status.txt" || { cat "$work/status.txt"; fail "shoal status"; }
echo "the staged shoal tool reads the domain (libshoal found through its \$ORIGIN rpath)"
kill -TERM $daemon
wait $daemon || fail "the staged shoald did not stop cleanly (status $?)"
trap - EXIT

if command -v systemd-analyze >/dev/null 2>&1; then
  step "systemd-analyze verify shoald@.service"
  # an install at a real path, so that verify finds the ExecStart binary
  cmake --install "$build" --prefix "$work/prefix" >/dev/null
  unit="$work/prefix/lib/systemd/system/shoald@.service"
  cp "$unit" "$work/shoald@test.service"
  out=$(cd "$work" && systemd-analyze verify --man=no "$work/shoald@test.service" 2>&1 || true)
  # no user 'shoal' on a build machine: that is what sysusers.d creates on install
  bad=$(printf '%s\n' "$out" | grep -v -e '^$' -e "shoal.*user" -e "User=" || true)
  [ -z "$bad" ] || { printf '%s\n' "$out"; fail "systemd-analyze verify"; }
  echo "unit verified"
fi
echo
echo "install test: passed"
