#!/bin/bash
# The C program of README.md ("C: a first program"), compiled with the command the
# README gives and run against a shoald of its own, so the README cannot rot unnoticed.
# Usage: readme_c_example.sh SOURCE_DIR BUILD_DIR SHOALD   (ctest: readme_c_example)
set -euo pipefail
src=$(cd "$1" && pwd) build=$(cd "$2" && pwd) shoald=$3
tmp=$(mktemp -d /tmp/shoal-readme-XXXXXX)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# The C block under the heading, and the command line indented below it.
awk '/^### C: a first program/ {h = 1} h && /^```c$/ {f = 1; next} f && /^```$/ {exit} f' \
    "$src/README.md" > "$tmp/first.c"
cmd=$(awk '/^### C: a first program/ {h = 1} h && /^    cc first\.c/ {sub(/^    /, ""); print; exit}' \
    "$src/README.md")
if [ ! -s "$tmp/first.c" ] || [ -z "$cmd" ]; then
    echo "README.md: no \`\`\`c block or no 'cc first.c' line under '### C: a first program'" >&2
    exit 1
fi

# The paths the command names, relative to a source tree with its build in build/.
ln -s "$src/capi" "$tmp/capi"
ln -s "$build" "$tmp/build"
export SHOAL_DOMAIN="readme-$$" SHOAL_RUNTIME_DIR="$tmp/run"
mkdir -m 700 "$SHOAL_RUNTIME_DIR"
"$shoald" --ready-fd 3 --log-level warn 3>"$tmp/ready" 2>"$tmp/shoald.log" &
pid=$!
for _ in $(seq 200); do
    grep -q ready "$tmp/ready" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { echo "shoald did not start:"; cat "$tmp/shoald.log"; exit 1; } >&2
    sleep 0.05
done
grep -q ready "$tmp/ready" || { echo "shoald not ready after 10 s" >&2; exit 1; }

echo "+ $cmd"
out=$(cd "$tmp" && bash -c "$cmd")
echo "$out"
case "$out" in
    *"seq "[0-9]*": hello"*) echo "OK: the README's C program ran" ;;
    *) echo "README C program: expected 'seq N: hello' in its output" >&2; exit 1 ;;
esac
