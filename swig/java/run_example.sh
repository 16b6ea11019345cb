#!/bin/sh
# Runs examples/java as examples/java/README.md documents, against a private
# shoald: run_example.sh JAVA SHOALD JNI_LIBRARY CLASSPATH
set -u
java=$1 shoald=$2 jni=$3 cp=$4
dir=$(mktemp -d "${TMPDIR:-/tmp}/shoal-javaexample-XXXXXX")
export SHOAL_DOMAIN="javaexample-$$" SHOAL_RUNTIME_DIR="$dir"
"$shoald" --log-level warn & daemon=$!
"$java" "-Dshoal.jni.library=$jni" -cp "$cp" EchoServer echo 2 & server=$!
out=$("$java" "-Dshoal.jni.library=$jni" -cp "$cp" EchoClient hello shoal)
rc=$?
echo "$out"
wait $server || rc=1
kill $daemon; wait $daemon
rm -rf "$dir"
[ $rc -eq 0 ] || exit $rc
echo "$out" | grep -q '^hello -> HELLO (sequence id' || { echo "unexpected output" >&2; exit 1; }
echo "$out" | grep -q '^shoal -> SHOAL (sequence id' || { echo "unexpected output" >&2; exit 1; }
