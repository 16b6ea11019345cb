#!/usr/bin/env bash
# bench/ab_compare.sh - the hot path of two revisions in one run.
#
#   bench/ab_compare.sh OLD_REV [ROUNDS]     (default 5 rounds)
#
# Builds OLD_REV (a git revision) and the working tree's shoal_bench and
# shoald in Release mode under build/ab/, then alternates them ROUNDS times
# (old, new, old, new, ...), each against its own shoald, on the rows that
# matter for a hot-path change: request/response and publish/subscribe at
# 64 B, busy and blocking, one pair. Prints every row's median per side and
# the new/old ratio of the medians over all rounds (noise on a shared machine
# hits both sides alike, which is why they alternate).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OLD_REV=${1:?usage: bench/ab_compare.sh OLD_REV [ROUNDS]}
ROUNDS=${2:-5}
AB=$ROOT/build/ab
mkdir -p "$AB"
OLD_SRC=$AB/old-src
rm -rf "$OLD_SRC"
git -C "$ROOT" worktree prune
git -C "$ROOT" worktree add -q --detach "$OLD_SRC" "$OLD_REV"
trap 'git -C "$ROOT" worktree remove --force "$OLD_SRC" >/dev/null 2>&1 || true' EXIT
build() { # src dir
  cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DSHOAL_BUILD_TESTS=OFF \
        -DSHOAL_BUILD_EXAMPLES=OFF -DSHOAL_BUILD_BINDINGS=OFF -DSHOAL_BUILD_BENCH=ON >/dev/null
  cmake --build "$2" -j2 --target shoald shoal_bench >/dev/null
}
build "$OLD_SRC" "$AB/old"
build "$ROOT" "$AB/new"

run_side() { # build-dir label round
  local b=$1 dom="ab$$-$2-$3" dir
  dir=$(mktemp -d /tmp/shoal-ab.XXXXXX)
  "$b/shoald" --domain "$dom" --runtime-dir "$dir" --config "$ROOT/bench/shoal-bench.conf" \
      --log-level warn --ready-fd 3 3>"$dir/ready" 2>"$dir/log" &
  local pid=$!
  for _ in $(seq 100); do [ -s "$dir/ready" ] && break; sleep 0.05; done
  SHOAL_RUNTIME_DIR=$dir "$(find "$b" -name shoal_bench -type f | head -1)" --domain "$dom" \
      --patterns rr,pubsub --payloads 64 --pairs 1 --modes busy,block --iters 20000 \
      --warmup 2000 --no-header | sed "s/^/$2,/"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}
OUT=$AB/rows.csv
: >"$OUT"
for r in $(seq "$ROUNDS"); do
  run_side "$AB/old" old "$r" >>"$OUT"
  run_side "$AB/new" new "$r" >>"$OUT"
done
python3 - "$OUT" <<'EOF'
import csv, statistics, sys
sys.path.insert(0, "bench")
rows = list(csv.reader(open(sys.argv[1])))
# side, then bench_common.h's CSV: find the columns by shape (name fields, then numbers)
by = {}
for r in rows:
    side, rest = r[0], r[1:]
    key = tuple(rest[:5])
    try:
        med, p99 = float(rest[6]), float(rest[7])
    except (ValueError, IndexError):
        continue
    by.setdefault(key, {}).setdefault(side, []).append((med, p99))
print("%-40s %9s %9s %7s %9s %9s %7s" % ("row (ns)", "old p50", "new p50", "ratio",
                                         "old p99", "new p99", "ratio"))
for key, sides in sorted(by.items()):
    if "old" in sides and "new" in sides:
        o = statistics.median(m for m, _ in sides["old"])
        n = statistics.median(m for m, _ in sides["new"])
        o9 = statistics.median(p for _, p in sides["old"])
        n9 = statistics.median(p for _, p in sides["new"])
        print("%-40s %9.0f %9.0f %7.3f %9.0f %9.0f %7.3f" % (",".join(key), o, n, n / o if o else 0,
                                                           o9, n9, n9 / o9 if o9 else 0))
EOF
