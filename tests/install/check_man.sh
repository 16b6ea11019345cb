#!/bin/sh
# The man pages describe every option and command that --help lists, and
# groff reads them without a warning.
#   check_man.sh SHOALD SHOAL_TOOL MANDIR   (MANDIR holds shoald.8 and shoal.1)
set -u
shoald=$1 tool=$2 mandir=$3
bad=0
check() { # page, help text
  page=$1 help=$2
  if [ ! -f "$page" ]; then echo "FAIL: $page is missing"; bad=1; return; fi
  # the page as text: \- is a hyphen, font escapes go
  text=$(sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$page")
  for word in $(printf '%s\n' "$help" | grep -o -- '--[a-z][a-z-]*' | sort -u) $3; do
    if ! printf '%s\n' "$text" | grep -q -- "$word"; then
      echo "FAIL: $(basename "$page") does not describe '$word' (listed by --help)"
      bad=1
    fi
  done
  if command -v groff >/dev/null 2>&1; then
    warn=$(groff -man -ww -z "$page" 2>&1)
    if [ -n "$warn" ]; then echo "FAIL: groff warns about $(basename "$page"):"; echo "$warn"; bad=1; fi
  fi
}
check "$mandir/shoald.8" "$("$shoald" --help)" ""
# commands: the lines of the "commands:" block indented by exactly two spaces
commands=$("$tool" --help | sed -n '/^commands:/,/^$/p' | grep -E '^  [a-z]+( |$)' | awk '{print $1}')
check "$mandir/shoal.1" "$("$tool" --help)" "$commands"
[ -n "$commands" ] || { echo "FAIL: no commands found in shoal --help"; bad=1; }
[ $bad = 0 ] && echo "man pages: every option and command of --help is described ($(echo $commands | wc -w) commands)"
exit $bad
