#!/bin/bash
# Two runs filling one empty object cache at once, 20 times: both print the numbers of a run
# without the cache, the cache ends with whole entries and no temporaries, and a third run
# takes all its code from it.  Whichever run stores first, each entry is renamed into place
# whole and read only once its content hash checks out, so no interleaving can give a wrong
# program: the verdicts do not depend on timing.
. "${top_srcdir:-.}/tests/lib.sh"
cd "$top_srcdir" || exit 1
run() { DNIC_CACHE_DIR="$1" timeout 120 "$DNIC" examples/seed_dni.dni --run --no-progress --set train.epochs=100 --set train.report_every=50 "${@:2}"; }
lines() { grep '^Iter' "$1"; }
run "$TMP/none" --no-cache > "$TMP/ref.out" 2>&1
bad=0 why=
for i in $(seq 1 20); do
    C=$TMP/cache$i
    run "$C" > "$TMP/a.out" 2>&1 &
    a=$!
    run "$C" > "$TMP/b.out" 2>&1
    rb=$?
    wait $a
    ra=$?
    run "$C" > "$TMP/c.out" 2>&1
    rc=$?
    stray=$(ls -A "$C" | grep -vc '\.o$')
    if [ $ra -ne 0 ] || [ $rb -ne 0 ] || [ $rc -ne 0 ] || [ "$stray" -ne 0 ] ||
        ! diff <(lines "$TMP/ref.out") <(lines "$TMP/a.out") > /dev/null ||
        ! diff <(lines "$TMP/ref.out") <(lines "$TMP/b.out") > /dev/null ||
        ! diff <(lines "$TMP/ref.out") <(lines "$TMP/c.out") > /dev/null ||
        ! grep -q '\([0-9]*\) of \1 parts from the cache' "$TMP/c.out"; then
        bad=$((bad + 1)); why="$why round $i: exits $ra $rb $rc, $stray stray files;"
    fi
    rm -rf "$C"
done
[ $bad -eq 0 ] && ok "20 times two runs fill one empty cache at once: the right numbers, whole entries, no temporaries" ||
    not_ok "two runs filling one cache at once" "$why"
finish
