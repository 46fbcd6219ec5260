#!/bin/bash
# End to end: the object cache.  A second run of the same model takes its code from the cache
# and prints the same lines; a corrupted, truncated or foreign file is a miss that is compiled
# and replaced; --no-cache neither reads nor writes; another model gets its own files; a cache
# that cannot be written is a warning, not a failure.
. "${top_srcdir:-.}/tests/lib.sh"
cd "$top_srcdir" || exit 1
C="$TMP/cache"
run() { DNIC_CACHE_DIR="$C" timeout 120 "$DNIC" examples/seed_dni.dni --run --no-progress --set train.epochs=300 --set train.report_every=100 "$@"; }
lines() { grep '^Iter' "$1"; }
cached() { grep -q 'parts from the cache' "$1"; }

run > "$TMP/cold.out" 2>&1
n=$(ls "$C"/*.o 2>/dev/null | wc -l)
if [ "$n" -ge 1 ] && ! cached "$TMP/cold.out"; then ok "a cold run compiles and stores $n object(s)"
else not_ok "a cold run compiles and stores objects" "$(ls -la "$C" 2>&1; cat "$TMP/cold.out")"; fi

run > "$TMP/warm.out" 2>&1
if cached "$TMP/warm.out" && diff <(lines "$TMP/cold.out") <(lines "$TMP/warm.out") > /dev/null; then
    ok "a warm run takes its code from the cache and prints the same lines"
else not_ok "a warm run uses the cache" "$(cat "$TMP/warm.out")"; fi

damage() { # $1: how
    for f in "$C"/*.o; do
        case $1 in
        flip) printf '\x55' | dd of="$f" bs=1 seek=200 conv=notrunc status=none ;;
        truncate) truncate -s 100 "$f" ;;
        magic) printf 'XXXXXXXX' | dd of="$f" bs=1 seek=0 conv=notrunc status=none ;;
        esac
    done
}
for how in flip truncate magic; do
    damage $how
    run > "$TMP/$how.out" 2>&1; rc=$?
    run > "$TMP/$how.2.out" 2>&1
    if [ $rc -eq 0 ] && ! cached "$TMP/$how.out" && cached "$TMP/$how.2.out" &&
        diff <(lines "$TMP/cold.out") <(lines "$TMP/$how.out") > /dev/null &&
        diff <(lines "$TMP/cold.out") <(lines "$TMP/$how.2.out") > /dev/null; then
        ok "a cache file damaged ($how) is recompiled and replaced"
    else not_ok "a cache file damaged ($how) is recompiled and replaced" "$(cat "$TMP/$how.out" "$TMP/$how.2.out")"; fi
done

run --no-cache > "$TMP/nc.out" 2>&1
DNIC_CACHE_DIR="$TMP/unused" "$DNIC" examples/seed_dni.dni --run --no-progress --no-cache --set train.epochs=1 > /dev/null 2>&1
if ! cached "$TMP/nc.out" && [ ! -e "$TMP/unused" ] && diff <(lines "$TMP/cold.out") <(lines "$TMP/nc.out") > /dev/null; then
    ok "--no-cache neither reads nor writes the cache"
else not_ok "--no-cache neither reads nor writes the cache" "$(cat "$TMP/nc.out"; ls -la "$TMP")"; fi

before=$(ls "$C"/*.o | wc -l)
run --set train.lr=0.02 > "$TMP/lr.out" 2>&1
after=$(ls "$C"/*.o | wc -l)
if ! cached "$TMP/lr.out" && [ "$after" -gt "$before" ]; then ok "another learning rate is other code: compiled, stored beside"
else not_ok "another learning rate is other code" "$before -> $after; $(cat "$TMP/lr.out")"; fi

: > "$TMP/a-file"
DNIC_CACHE_DIR="$TMP/a-file/sub" "$DNIC" examples/seed_dni.dni --run --no-progress --set train.epochs=300 \
    --set train.report_every=100 > "$TMP/ro.out" 2> "$TMP/ro.err"; rc=$?
if [ $rc -eq 0 ] && grep -q "warning: not caching the compiled code: cannot create '.*a-file/sub'" "$TMP/ro.err" &&
    diff <(lines "$TMP/cold.out") <(lines "$TMP/ro.out") > /dev/null; then
    ok "a cache directory that cannot be created is a warning; the run goes on"
else not_ok "an unwritable cache is a warning" "rc=$rc $(cat "$TMP/ro.err")"; fi
ls "$C" | grep -v '\.o$' > "$TMP/stray" && not_ok "no temporary files are left in the cache" "$(cat "$TMP/stray")" ||
    ok "no temporary files are left in the cache"
finish
