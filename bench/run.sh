#!/usr/bin/env bash
# bench/run.sh - the one command for shoal's benchmark suite (issue 6).
#
#   bench/run.sh                 # build, start daemons, run every suite, report
#   bench/run.sh --quick         # fewer iterations (a smoke run, under two minutes)
#   bench/run.sh --cpu-a 0 --cpu-b 1 --iters 20000 --repeat 3 \
#       --suites raw,floor,iceoryx,shoal,throughput,scale,python
#
# Suites: raw (the machine's limit), floor (design_floor), iceoryx and shoal
# (the latency rows: rr, pubsub, create of each), throughput (fan-out, k
# requests in flight, 1,000 services: both iceoryx and shoal), scale (4,096
# ports, 1,000 services, a subscriber matching 1,000 publishers, bytes per
# port slot: both), python. All are run by default.
#
# What it does, in order:
#  1. builds the benchmarks in build/bench-release (RelWithDebInfo, no
#     sanitizers, separate from the developers' build/); if the whole project
#     does not configure/build yet, builds bench/ alone (raw + iceoryx only);
#  2. starts iceoryx's RouDi (bench/roudi-bench.toml) and shoald
#     (bench/shoal-bench.conf, a private domain and runtime dir), each
#     remembered by its own pid;
#  3. runs the suites in this one run: raw_pingpong (the machine's limit),
#     design_floor (the bare pieces of a zero-copy round trip), iceoryx_bench,
#     shoal_bench (latency, then throughput, then scale, each while its
#     daemon runs; for scale a second shoald with 1,024 more publisher slots
#     runs too, to get the exact size of a port slot), and
#     bench/python_bench.py if it exists;
#     (set SHOAL_BENCH_REV to name the commit when running from a snapshot of it)
#  4. stops every daemon by pid (a trap does it on any exit, so nothing is
#     left running), writes bench/results/latest.csv (+ latest-meta.txt),
#     prints the table with each shoal row's ratio to the raw limit and to
#     iceoryx, renders bench/results/latest.png, and refreshes the table in
#     docs/performance.md.
#
# Placement: side A (client / pinger) on --cpu-a, side B (server / ponger) on
# --cpu-b; default 0 and 1. The daemons are not pinned (they are not on the hot
# path). This machine has 2 cores: 4 pairs means 4 spinning threads per core,
# so busy-poll loops then call sched_yield ("yield" in the note column).
#
# Python hook: if bench/python_bench.py exists it is run as
#   python3 bench/python_bench.py --domain D --runtime-dir R --skip-check --cpu-a A
#     --cpu-b B --iters N --repeat R --payloads P --no-header
# with SHOAL_DOMAIN / SHOAL_RUNTIME_DIR exported and shoald running, and must
# print CSV with the same header (bench/bench_common.h) on stdout. It is also
# used to check that every chunk is back in its pool after the C suite
# (--wait-pools); right after the build, --install-only DIR pip-installs the
# shoal package into build/bench-release/python-site. PY_PAYLOADS=64,4K,1M (default) chooses the Python payloads.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
BUILD=${SHOAL_BENCH_BUILD:-$ROOT/build/bench-release}
OUT=$BENCH/results
CPU_A=0
CPU_B=1
ITERS=20000
WARMUP=2000
RAW_ITERS=100000
SUITES=raw,floor,iceoryx,shoal,throughput,scale,python
PAYLOADS=64,4K,1M,64M,1G
PAIRS=1,4
REPEAT=3
DO_BUILD=1
UPDATE_DOC=1

usage() { sed -n '2,47p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

ARGS="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) ITERS=2000; WARMUP=200; RAW_ITERS=20000; shift ;;
    --iters) ITERS=$2; RAW_ITERS=$((5 * $2)); shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --cpu-a) CPU_A=$2; shift 2 ;;
    --cpu-b) CPU_B=$2; shift 2 ;;
    --suites) SUITES=$2; shift 2 ;;
    --payloads) PAYLOADS=$2; shift 2 ;;
    --pairs) PAIRS=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    --no-doc) UPDATE_DOC=0; shift ;;
    -h|--help) usage 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage 2 ;;
  esac
done

NCPU=$(nproc)
if [ "$NCPU" -lt 2 ]; then CPU_B=$CPU_A; fi
want() { case ",$SUITES," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
log() { printf '== %s\n' "$*" >&2; }

mkdir -p "$OUT"
TMP=$(mktemp -d /tmp/shoal-bench.XXXXXX)
ROUDI_PID=""
SHOALD_PID=""
SHOALD_REF_PID=""
ROUDI_SHM_OURS=0
POOLS_AFTER_C=""
POOLS_AFTER_PY=""

stop_pid() { # stop_pid PID NAME SECONDS: TERM, wait, then KILL - only that pid
  local pid=$1 name=$2 secs=$3 i
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) did not stop in ${secs}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$SHOALD_PID" shoald 10
  stop_pid "$SHOALD_REF_PID" "shoald (reference)" 10
  # RouDi ignores signals while it pre-faults its segment; give it time
  stop_pid "$ROUDI_PID" iox-roudi 60
  if [ "$ROUDI_SHM_OURS" = 1 ]; then
    # a RouDi killed hard leaves its segments; they are ours (none existed before)
    rm -f /dev/shm/iceoryx_mgmt "/dev/shm/$(id -un)" 2>/dev/null || true
  fi
  if [ -n "${SHOAL_BENCH_KEEP_TMP:-}" ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 0. what the suites need ----------------------------------------------
# iceoryx 2.0.3 comes from Debian; install it (and the build tools) when missing
if [ "${SHOAL_BENCH_NO_APT:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1; then
  need=()
  for pkg in iceoryx libiceoryx-binding-c-dev cmake build-essential; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    log "installing ${need[*]} (set SHOAL_BENCH_NO_APT=1 to skip)"
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"; } \
      >"$TMP/apt.log" 2>&1 || log "apt-get install failed: $(tail -1 "$TMP/apt.log")"
  fi
fi

# ---- 1. build -------------------------------------------------------------
FULL=0
BUILD_FAILED=""
if [ "$DO_BUILD" = 1 ]; then
  log "building in $BUILD"
  if cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHOAL_SANITIZE= \
       -DSHOAL_BUILD_BENCH=ON -DSHOAL_BUILD_TESTS=OFF -DSHOAL_BUILD_EXAMPLES=OFF \
       -DSHOAL_BUILD_BINDINGS=OFF >"$TMP/cmake.log" 2>&1; then
    FULL=1
    for t in raw_pingpong design_floor iceoryx_bench shoald shoal_bench; do
      if ! cmake --build "$BUILD" -j"$NCPU" --target "$t" >"$TMP/build-$t.log" 2>&1; then
        BUILD_FAILED="$BUILD_FAILED $t"
        log "target $t did not build (an older binary, if any, is used; see latest-meta.txt):"
        grep -E "error|Error" "$TMP/build-$t.log" | head -5 >&2 || true
      fi
    done
    BIN=$BUILD/bench
    SHOALD=$BUILD/shoald
    # the Python package (cffi build of the same sources) right after shoald, so that
    # both come from one snapshot of a tree other people edit
    if { want python || want shoal; } && [ -f "$BENCH/python_bench.py" ]; then
      rm -rf "$BUILD/python-site"
      if python3 "$BENCH/python_bench.py" --install-only "$BUILD/python-site" >"$TMP/pip-shoal.log" 2>&1; then
        export PYTHONPATH="$BUILD/python-site${PYTHONPATH:+:$PYTHONPATH}"
      else
        log "python: the shoal package did not install:"; tail -5 "$TMP/pip-shoal.log" >&2
      fi
    fi
  fi
  if [ "$FULL" = 0 ] || [ ! -x "$BUILD/bench/raw_pingpong" ]; then
    log "the project does not configure/build yet: building bench/ alone (raw + iceoryx)"
    tail -5 "$TMP/cmake.log" >&2 || true
    cmake -S "$BENCH" -B "$BUILD-standalone" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$TMP/cmake2.log" 2>&1
    cmake --build "$BUILD-standalone" -j"$NCPU" >>"$TMP/cmake2.log" 2>&1 || { cat "$TMP/cmake2.log" >&2; exit 1; }
    BIN=$BUILD-standalone
    SHOALD=""
  fi
else
  BIN=$BUILD/bench
  SHOALD=$BUILD/shoald
  [ -x "$BIN/raw_pingpong" ] || BIN=$BUILD-standalone
fi

CSV=$TMP/all.csv
HEADER="suite,pattern,mode,payload,pairs,iters,median_ns,p99_ns,p999_ns,max_ns,throughput_per_s,cpus,note"
echo "$HEADER" >"$CSV"
append() { grep -v -x -F "$HEADER" | grep -v '^[[:space:]]*$' >>"$CSV" || true; }
error_row() { # suite pattern note
  echo "$1,$2,-,0,0,0,,,,,,-,error: $3" >>"$CSV"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "placement: side A on CPU $CPU_A, side B on CPU $CPU_B ($NCPU online CPUs); load average $LOAD_BEFORE"
OPTS=(--cpu-a "$CPU_A" --cpu-b "$CPU_B" --no-header)
COMMON=("${OPTS[@]}" --iters "$ITERS" --warmup "$WARMUP" --payloads "$PAYLOADS" --pairs "$PAIRS"
        --repeat "$REPEAT")
# the blocking rows again with both sides on one CPU: a wake-up is then a
# context switch instead of waking an idle vCPU (compared with the raw futex
# row of the same placement)
SAMECPU=(--cpu-a "$CPU_A" --cpu-b "$CPU_A" --no-header --iters "$ITERS" --warmup "$WARMUP"
         --repeat "$REPEAT" --pairs 1 --modes block --payloads 64,1G --patterns rr,pubsub)
# throughput and scale rows bring their own pairs and payloads (bench_common.h)
SWEEP=("${OPTS[@]}" --iters "$ITERS" --warmup "$WARMUP" --repeat "$REPEAT")
# an IPC suite binary's runs: latency (when its own suite is wanted), then
# the throughput and scale groups; run_ipc NAME STDERR-FILE BIN [ARGS...]
run_ipc() {
  local name=$1 err=$2 bin=$3 group
  shift 3
  if want "$name"; then
    "$bin" "$@" "${COMMON[@]}" 2>>"$err" | append || log "$name: latency rows exited non-zero (see rows)"
    if [ "$CPU_A" != "$CPU_B" ]; then
      "$bin" "$@" "${SAMECPU[@]}" 2>>"$err" | append || true
    fi
  fi
  for group in throughput scale; do
    want "$group" || continue
    log "$name: $group rows"
    "$bin" "$@" "${SWEEP[@]}" --patterns "$group" 2>>"$err" | append \
      || log "$name: $group rows exited non-zero (see rows)"
  done
}

# ---- 2+3. raw limit -------------------------------------------------------------
if want raw; then
  log "raw: cache-line and futex ping-pong"
  "$BIN/raw_pingpong" "${OPTS[@]}" --iters "$RAW_ITERS" --warmup $((RAW_ITERS / 10)) --pairs "$PAIRS" \
    --repeat "$REPEAT" | append || log "raw_pingpong exited non-zero"
  if [ "$CPU_A" != "$CPU_B" ]; then
    # reference: the futex round trip when both sides share one CPU (no
    # cross-CPU wake-up of an idle vCPU)
    "$BIN/raw_pingpong" --cpu-a "$CPU_A" --cpu-b "$CPU_A" --no-header --iters "$RAW_ITERS" \
      --warmup $((RAW_ITERS / 10)) --pairs 1 --modes block --patterns pingpong | append || true
  fi
fi

# ---- the floor of a zero-copy design (bench/design_floor.c) -----------------------------
if want floor; then
  if [ -x "$BIN/design_floor" ]; then
    log "floor: ring, + payload line, + header line, next to the raw ping-pong"
    "$BIN/design_floor" --cpu-a "$CPU_A" --cpu-b "$CPU_B" --iters "$RAW_ITERS" --repeat "$REPEAT" \
      | append || log "design_floor exited non-zero"
  else
    error_row floor probe "design_floor not built"
  fi
fi

# ---- iceoryx ---------------------------------------------------------------------------
if want iceoryx || want throughput || want scale; then
  ROUDI=$(command -v iox-roudi || true)
  if [ ! -x "$BIN/iceoryx_bench" ] || [ -z "$ROUDI" ]; then
    log "iceoryx: not available (apt-get install iceoryx libiceoryx-binding-c-dev)"
    error_row iceoryx probe "iceoryx_bench or iox-roudi not installed"
  elif pgrep -x iox-roudi >/dev/null 2>&1; then
    log "iceoryx: another RouDi is already running (only one per machine); not touching it"
    error_row iceoryx probe "another iox-roudi was running; suite skipped"
  else
    [ -e /dev/shm/iceoryx_mgmt ] && log "iceoryx: stale /dev/shm/iceoryx_mgmt present (RouDi will take it over)"
    log "iceoryx: starting RouDi (pre-faults its ~5.4 GiB payload segment, ~15-30 s)"
    ROUDI_SHM_OURS=1
    "$ROUDI" -c "$BENCH/roudi-bench.toml" -l info >"$TMP/roudi.log" 2>&1 &
    ROUDI_PID=$!
    ready=0
    for ((i = 0; i < 1800; i++)); do
      if grep -q "RouDi is ready for clients" "$TMP/roudi.log"; then ready=1; break; fi
      kill -0 "$ROUDI_PID" 2>/dev/null || break
      sleep 0.1
    done
    if [ "$ready" = 1 ]; then
      log "iceoryx: RouDi ready (pid $ROUDI_PID)"
      # iceoryx logs every pool exhaustion (the 4 x 1 GiB rows) to stderr: keep it in a file
      : >"$TMP/iceoryx_bench.err"
      run_ipc iceoryx "$TMP/iceoryx_bench.err" "$BIN/iceoryx_bench"
      log "iceoryx_bench: $(wc -l <"$TMP/iceoryx_bench.err") lines on stderr (pool exhaustion of the 4-pair 1 GiB rows is expected)"
    else
      log "iceoryx: RouDi did not become ready:"; tail -5 "$TMP/roudi.log" >&2
      error_row iceoryx probe "RouDi did not start: $(tail -1 "$TMP/roudi.log" | tr ',' ';')"
    fi
    stop_pid "$ROUDI_PID" iox-roudi 60
    ROUDI_PID=""
    rm -f /dev/shm/iceoryx_mgmt "/dev/shm/$(id -un)" 2>/dev/null || true
    ROUDI_SHM_OURS=0
    grep -iE "error|fatal" "$TMP/roudi.log" | head -5 >&2 || true
  fi
fi

# A second shoald whose config differs only in 1,024 more publisher slots:
# the difference of the two management segments, as each daemon reports it,
# is the exact size of a port slot (shoal_bench --ref-domain).
start_ref_shoald() {
  awk '/^publishers[[:space:]]*=/ { $0 = "publishers = " ($3 + 1024) } 1' \
    "$BENCH/shoal-bench.conf" >"$TMP/shoal-ref.conf"
  mkfifo "$TMP/shoald-ref.ready"
  "$SHOALD" --domain "${DOMAIN}ref" --config "$TMP/shoal-ref.conf" --runtime-dir "$RUNDIR" \
    --log-level warn --ready-fd 3 3>"$TMP/shoald-ref.ready" 2>"$TMP/shoald-ref.log" &
  SHOALD_REF_PID=$!
  local line=""
  read -r -t 30 line <"$TMP/shoald-ref.ready" || true
  if [ "$line" = ready ]; then
    log "shoal: reference shoald ready (pid $SHOALD_REF_PID, domain ${DOMAIN}ref)"
    return 0
  fi
  log "shoal: the reference shoald did not get ready (port_memory_bytes is an upper bound):"
  cat "$TMP/shoald-ref.log" >&2
  stop_pid "$SHOALD_REF_PID" "shoald (reference)" 5
  SHOALD_REF_PID=""
  return 1
}

# ---- shoal (and the Python rows, which need the same daemon) --------------------------------
DOMAIN=bench$$
RUNDIR=$TMP/run
if want shoal || want python || want throughput || want scale; then
  if [ -z "$SHOALD" ] || [ ! -x "$SHOALD" ]; then
    log "shoal: shoald not built yet; shoal rows skipped"
    error_row shoal probe "shoald not built (library not buildable yet)"
  else
    mkdir -m 700 "$RUNDIR"
    mkfifo "$TMP/shoald.ready"
    "$SHOALD" --domain "$DOMAIN" --config "$BENCH/shoal-bench.conf" --runtime-dir "$RUNDIR" \
      --log-level warn --ready-fd 3 3>"$TMP/shoald.ready" 2>"$TMP/shoald.log" &
    SHOALD_PID=$!
    line=""
    read -r -t 30 line <"$TMP/shoald.ready" || true
    if [ "$line" != ready ]; then
      log "shoal: shoald did not get ready:"; cat "$TMP/shoald.log" >&2
      error_row shoal probe "shoald did not start: $(tail -1 "$TMP/shoald.log" | tr ',' ';')"
      stop_pid "$SHOALD_PID" shoald 5
      SHOALD_PID=""
    else
      log "shoal: shoald ready (pid $SHOALD_PID, domain $DOMAIN)"
      if want raw; then # the blocking limit drifts: measure it right next to shoal too
        "$BIN/raw_pingpong" "${OPTS[@]}" --iters "$ITERS" --warmup "$WARMUP" --pairs 1 \
          --modes block --patterns pingpong --repeat "$REPEAT" \
          | sed 's/$/;just before shoal/' | append || true
      fi
      export SHOAL_DOMAIN=$DOMAIN SHOAL_RUNTIME_DIR=$RUNDIR
      REF_ARGS=()
      if want scale && start_ref_shoald; then REF_ARGS=(--ref-domain "${DOMAIN}ref"); fi
      if ! { want shoal || want throughput || want scale; }; then
        :
      elif [ -x "$BIN/shoal_bench" ]; then
        run_ipc shoal /dev/stderr "$BIN/shoal_bench" --domain "$DOMAIN" "${REF_ARGS[@]}"
      else
        error_row shoal probe "shoal_bench not built"
      fi
      stop_pid "$SHOALD_REF_PID" "shoald (reference)" 10
      SHOALD_REF_PID=""
      # every chunk back in its pool after the C suite? (a side killed between
      # configurations would leave chunks behind until shoald reclaims them)
      if [ -f "$BENCH/python_bench.py" ]; then
        POOLS_AFTER_C=$(python3 "$BENCH/python_bench.py" --domain "$DOMAIN" --runtime-dir "$RUNDIR" \
          --skip-check --wait-pools 10 2>"$TMP/pools.err" || true)
        log "shoal: after shoal_bench: ${POOLS_AFTER_C:-pool check failed: $(tail -1 "$TMP/pools.err")}"
      fi
      if want python && [ -f "$BENCH/python_bench.py" ]; then
        log "python: bench/python_bench.py (shoal's binding, iceoryx2's from PyPI)"
        # iceoryx2's Python package (PyPI); its absence is recorded as a row, not fatal
        if ! python3 -c 'import iceoryx2' 2>/dev/null; then
          python3 -m pip install --quiet iceoryx2 >"$TMP/pip-iceoryx2.log" 2>&1 \
            || log "pip install iceoryx2 failed: $(tail -1 "$TMP/pip-iceoryx2.log")"
        fi
        # the shoal package built in step 1 into $BUILD/python-site (not python/ of the
        # tree, whose in-place build may be stale, nor whatever site-packages holds)
        python3 "$BENCH/python_bench.py" --domain "$DOMAIN" --runtime-dir "$RUNDIR" --skip-check \
          --cpu-a "$CPU_A" --cpu-b "$CPU_B" --iters "$ITERS" --repeat "$REPEAT" \
          --payloads "${PY_PAYLOADS:-64,4K,1M}" --no-header | append \
          || error_row shoal-python probe "python_bench.py failed"
        POOLS_AFTER_PY=$(python3 "$BENCH/python_bench.py" --domain "$DOMAIN" --runtime-dir "$RUNDIR" \
          --skip-check --wait-pools 10 2>/dev/null || true)
        log "shoal: after python_bench: ${POOLS_AFTER_PY:-pool check failed}"
      fi
      stop_pid "$SHOALD_PID" shoald 10
      SHOALD_PID=""
    fi
  fi
fi

# ---- the raw limit again at the end: the VM's wake-up latency drifts with the
# host's load; report.py divides by the lower of the two medians (the limit is
# the best the machine did in this run)
if want raw; then
  log "raw: again, after the other suites"
  "$BIN/raw_pingpong" "${OPTS[@]}" --iters "$RAW_ITERS" --warmup $((RAW_ITERS / 10)) --pairs "$PAIRS" \
    --repeat "$REPEAT" --patterns pingpong | sed 's/$/;after the other suites/' | append \
    || log "raw_pingpong exited non-zero"
fi

# ---- 4. results -------------------------------------------------------------------------
cp "$CSV" "$OUT/latest.csv"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  if [ -n "${SHOAL_BENCH_REV:-}" ]; then
    echo "git: $SHOAL_BENCH_REV (a snapshot of it)"
  else
    echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(
      git -C "$ROOT" diff --quiet HEAD -- capi bench python 2>/dev/null || echo ' + uncommitted changes in capi/, bench/ or python/')"
  fi
  echo "kernel: $(uname -r)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $NCPU online"
  echo "virtualization: cpu hypervisor flag $(grep -qw hypervisor /proc/cpuinfo && echo yes || echo no); $(lscpu 2>/dev/null | grep -i 'hypervisor vendor' | tr -s ' ' || true)"
  echo "clocksource: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)"
  echo "cpuidle: $(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo none)"
  echo "placement: side A cpu $CPU_A, side B cpu $CPU_B; daemons unpinned"
  echo "iterations: $ITERS per pair and configuration, in $REPEAT runs (warmup $WARMUP each); raw $RAW_ITERS"
  echo "load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "iceoryx: $(dpkg-query -W -f='${Version}' iceoryx 2>/dev/null || echo none)"
  echo "command: bench/run.sh $ARGS"
  echo "targets that did not build (older binaries used):${BUILD_FAILED:- none}"
  echo "shoal pools after shoal_bench: ${POOLS_AFTER_C:-not checked}; after python_bench: ${POOLS_AFTER_PY:-not checked}"
  echo "python: $(python3 --version 2>&1); iceoryx2 (PyPI): $(python3 -c 'from importlib.metadata import version as v; print(v("iceoryx2"))' 2>/dev/null || echo not installed)"
} >"$OUT/latest-meta.txt"
log "wrote $OUT/latest.csv"

PLOT_ARGS=()
if python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install --quiet matplotlib >"$TMP/pip.log" 2>&1; then
  PLOT_ARGS=(--plot "$OUT/latest.png")
else
  log "matplotlib not available (pip install matplotlib failed); no plot"
fi
DOC_ARGS=()
[ "$UPDATE_DOC" = 1 ] && DOC_ARGS=(--update-doc "$ROOT/docs/performance.md")
python3 "$BENCH/report.py" "$OUT/latest.csv" --meta "$OUT/latest-meta.txt" \
  --markdown "$OUT/latest.md" "${PLOT_ARGS[@]}" "${DOC_ARGS[@]}"
