#!/bin/bash
# The hostile-input suite: every case in tests/hostile/cases is a command on a hostile input
# (tests/hostile/files/, or made by tests/hostile/make-inputs.sh) and the one line it must say.
# Each case must exit 1, print that line exactly, print no sanitizer report, stay within a
# 1 GiB address space (not under a sanitizer, which reserves far more), finish within 20 s, and
# leave every file in its directory as it was (no output created, none changed).
# A case line: NAME | ARGS (shell words, after dnic) | EXPECTED LINE; `#` starts a comment.
# usage: tests/hostile/run.sh [--show] (--show prints what each case says, for writing cases)
. "${top_srcdir:-.}/tests/lib.sh"
here=$top_srcdir/tests/hostile
show=no
[ "${1:-}" = --show ] && show=yes
cd "$TMP" || exit 1
cp "$here"/files/* .
DNIC="$DNIC" bash "$here/make-inputs.sh" || { not_ok "the hostile inputs can be made"; finish; }
# outputs a case may name: they must come out unchanged
printf 'old weights\n' > old.st
printf 'old log\n' > old.csv
mkdir -p out
snapshot() { find . -type f -newer "$1" -o -type f -name 'old.*' | sort | xargs -r md5sum; ls -A . out; }
limit=
[ -z "${SAN_CFLAGS:-}" ] && limit="ulimit -v 1048576;"

while IFS= read -r line; do
    case $line in '' | '#'*) continue ;; esac
    name=$(printf '%s' "$line" | sed 's/ *|.*//')
    args=$(printf '%s' "$line" | sed 's/^[^|]*| *//; s/ *|.*//')
    want=$(printf '%s' "$line" | sed 's/^[^|]*|[^|]*| //')
    if [ -z "$limit" ] && [ "${name#mem-}" != "$name" ]; then
        ok "$name # SKIP a sanitizer reserves more address space than the limit this case needs"
        continue
    fi
    touch .mark
    before=$(snapshot .mark)
    out=$( (eval "$limit"; eval "exec timeout -s KILL 20 \"\$DNIC\" $args") 2>&1 < /dev/null)
    rc=$?
    after=$(snapshot .mark)
    if [ $show = yes ]; then
        printf '%s | %s | %s\n' "$name" "$args" "$(printf '%s\n' "$out" | grep -m1 -a 'error' | cut -c1-300) [exit $rc]"
        continue
    fi
    why=
    [ $rc -eq 1 ] || why="exit $rc, not 1;"
    case $want in
    *'*') printf '%s\n' "$out" | awk -v p="${want%\*}" 'index($0, p) == 1 { f = 1 } END { exit !f }' || why="$why no line '$want';" ;;
    *) printf '%s\n' "$out" | grep -qxaF -- "$want" || why="$why no line '$want';" ;;
    esac
    printf '%s\n' "$out" | grep -qa 'Sanitizer\|runtime error' && why="$why a sanitizer report;"
    [ "$before" = "$after" ] || why="$why files changed: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | head -5 | tr '\n' ' ');"
    if [ -z "$why" ]; then ok "$name"; else not_ok "$name" "$why" "$(printf '%s\n' "$out" | head -c 2000)"; fi
done < "$here/cases"
finish
