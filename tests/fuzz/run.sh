#!/bin/sh
# Builds the libFuzzer harnesses in build-fuzz/ and runs each for a while
# against its corpus (tests/fuzz/corpus/<harness>, replayed first: every
# committed regression input must pass).
#
#   tests/fuzz/run.sh [SECONDS]    each harness for SECONDS (default 60)
#   tests/fuzz/run.sh --seeds      regenerate the seeds in tests/fuzz/corpus
#
# Environment: CC (default clang), SHOAL_FUZZ_BUILD (default build-fuzz),
# SHOAL_FUZZ_TARGETS (default: all three), SHOAL_FUZZ_ARGS (more libFuzzer
# flags, e.g. -jobs=2 -workers=2).
# Exit status: 0 when every harness ran clean (or when clang or libFuzzer is
# missing: skipped, with a message), 1 on any crash, leak, timeout or check
# failure (the input is left in build-fuzz/artifacts/), 2 on a build error.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${SHOAL_FUZZ_BUILD:-$root/build-fuzz}
targets=${SHOAL_FUZZ_TARGETS:-"fuzz_config fuzz_daemon_msg fuzz_client_reply"}
secs=60
seeds=0
case "${1:-}" in
  --seeds) seeds=1 ;;
  '') ;;
  *[!0-9]*|0) echo "usage: $0 [SECONDS] | --seeds" >&2; exit 2 ;;
  *) secs=$1 ;;
esac

# ---- clang with libFuzzer, or skip -------------------------------------------
cc=${CC:-clang}
if ! command -v "$cc" >/dev/null 2>&1; then
  for c in clang clang-18 clang-17 clang-16 clang-15 clang-14; do
    if command -v "$c" >/dev/null 2>&1; then cc=$c; break; fi
  done
fi
if ! command -v "$cc" >/dev/null 2>&1 || ! "$cc" --version 2>/dev/null | grep -q clang; then
  echo "SKIP: fuzzing needs clang with libFuzzer; '$cc' is not clang (set CC=clang-NN)"
  exit 0
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' > "$probe/p.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" >"$probe/log" 2>&1; then
  echo "SKIP: $cc cannot link -fsanitize=fuzzer (libclang_rt.fuzzer missing):"
  sed 's/^/  /' "$probe/log" | head -5
  exit 0
fi
cxx=$(echo "$cc" | sed 's/clang/clang++/')
command -v "$cxx" >/dev/null 2>&1 || cxx=c++

# ---- build ---------------------------------------------------------------------
echo "== building the harnesses in $build ($cc)"
if ! cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
     -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHOAL_FUZZ=ON -DSHOAL_BUILD_TESTS=OFF \
     -DSHOAL_BUILD_EXAMPLES=OFF -DSHOAL_BUILD_BINDINGS=OFF -DSHOAL_BUILD_BENCH=OFF \
     >"$build.cmake.log" 2>&1; then
  cat "$build.cmake.log"; exit 2
fi
rm -f "$build.cmake.log"
if ! cmake --build "$build" -j2 --target $targets fuzz_seeds >"$build/build.log" 2>&1; then
  cat "$build/build.log"; exit 2
fi
fz=$build/tests/fuzz

if [ $seeds = 1 ]; then
  "$fz/fuzz_seeds" "$root/tests/fuzz/corpus" && echo "seeds written to tests/fuzz/corpus"
  exit $?
fi

# ---- run -------------------------------------------------------------------------
# A smaller ASan quarantine: the machine is shared, and the harnesses free a
# lot of small blocks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=64:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$build/artifacts"
status=0
summary=""
for t in $targets; do
  case $t in
    fuzz_config) maxlen=4096 ;;
    fuzz_daemon_msg) maxlen=4096 ;;
    *) maxlen=8192 ;;
  esac
  work=$build/corpus/$t
  mkdir -p "$work"
  log=$build/$t.log
  echo "== $t: ${secs}s (log $log)"
  # new inputs go to the work directory, the committed corpus stays as is
  "$fz/$t" -max_total_time="$secs" -max_len=$maxlen -timeout=25 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" ${SHOAL_FUZZ_ARGS:-} \
    "$work" "$root/tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
  corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p')
  line=$(printf '%-18s %s execs, %s exec/s, cov %s, ft %s, corpus %s' "$t" "${execs:-?}" \
         "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")
  if [ $rc -ne 0 ]; then
    status=1
    line="$line  FAILED (exit $rc)"
    echo "---- $t failed; the end of its log:"
    grep -vE '^#[0-9]+ ' "$log" | tail -40
    ls "$build/artifacts/$t-"* 2>/dev/null | sed 's/^/  reproducer: /'
  fi
  echo "$line"
  summary="$summary$line
"
done
echo "== summary"
printf '%s' "$summary"
[ $status = 0 ] && echo "all harnesses ran clean" || echo "FAILED: see the logs and artifacts above"
exit $status
