#!/bin/bash
# End to end: the object cache.  A second run of the same model takes its code from the cache
# and prints the same lines; a corrupted, truncated or foreign file is a miss that is compiled
# and replaced; --no-cache neither reads nor writes; another model gets its own files; a cache
# that cannot be written is a warning, not a failure.  The data cache likewise: a second run reads
# gzip IDX files' decoded bytes from it; a damaged entry is named, decoded again and replaced.
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

# ---- the data cache: gzip IDX files' decoded bytes beside the objects ------------------------
DC="$TMP/dcache"
D="$TMP/data"
mkdir -p "$D"
gzip -c tests/dni/data/tiny-images.idx > "$D/img.gz"
gzip -c tests/dni/data/tiny-labels.idx > "$D/lab.gz"
sed -e 's|"../data/tiny-images.idx"|"img.gz"|; s|"../data/tiny-labels.idx"|"lab.gz"|' \
    -e 's|test_images .*|test_images = "img.gz"|; s|test_labels .*|test_labels = "lab.gz"|' \
    tests/dni/pass/013_constant_expressions.dni > "$D/m.dni"
drun() { DNIC_CACHE_DIR="$DC" timeout 60 "$DNIC" "$D/m.dni" --run --no-progress --set train.epochs=5 "$@"; }
from() { grep -q "; $1 from the cache)" "$2"; }
drun --no-cache > "$TMP/d0.out" 2>&1
drun > "$TMP/d1.out" 2>&1
n=$(ls "$DC"/*.data 2> /dev/null | wc -l)
if [ "$n" -eq 2 ] && from "2 files" "$TMP/d1.out" && diff <(lines "$TMP/d0.out") <(lines "$TMP/d1.out") > /dev/null; then
    ok "a cold run decodes the two gzip files and stores their bytes (the test set, the same files, reads them)"
else not_ok "a cold run stores the decoded data" "$n entries; $(cat "$TMP/d1.out")"; fi
drun > "$TMP/d2.out" 2>&1
if from "4 files" "$TMP/d2.out" && ! grep -q 'note:' "$TMP/d2.out" && diff <(lines "$TMP/d0.out") <(lines "$TMP/d2.out") > /dev/null; then
    ok "a warm run reads all four files (train and test) from the data cache and prints the same lines"
else not_ok "a warm run reads the data cache" "$(cat "$TMP/d2.out")"; fi
img=$(grep -l . "$DC"/*.data | while read -r f; do [ "$(wc -c < "$f")" -eq 72 ] && echo "$f"; done)
for how in flip truncate magic fifo; do
    case $how in
    flip) printf '\x55' | dd of="$img" bs=1 seek=60 conv=notrunc status=none; why="its data does not match its checksum" ;;
    truncate) truncate -s 50 "$img"; why="its header declares 32 bytes of data but it holds 10" ;;
    magic) printf 'XXXXXXXX' | dd of="$img" bs=1 seek=0 conv=notrunc status=none; why="not an entry of this cache (wrong magic)" ;;
    fifo) rm -f "$img"; mkfifo "$img"; why="not a regular file" ;;
    esac
    drun > "$TMP/d$how.out" 2>&1; rc=$?
    drun > "$TMP/d$how.2.out" 2>&1
    want="dnic: note: the data cache's copy of '$D/img.gz' ($img) is damaged: $why; decoding the file again"
    if [ $rc -eq 0 ] && grep -qxF "$want" "$TMP/d$how.out" && from "3 files" "$TMP/d$how.out" &&
        from "4 files" "$TMP/d$how.2.out" && ! grep -q note: "$TMP/d$how.2.out" &&
        diff <(lines "$TMP/d0.out") <(lines "$TMP/d$how.out") > /dev/null &&
        diff <(lines "$TMP/d0.out") <(lines "$TMP/d$how.2.out") > /dev/null; then
        ok "a data cache entry damaged ($how) is named, decoded again from the file and replaced"
    else not_ok "a data cache entry damaged ($how) is rebuilt" "want: $want" "$(cat "$TMP/d$how.out" "$TMP/d$how.2.out")"; fi
done
touch -d '2001-01-01' "$D/img.gz"
drun > "$TMP/dtouch.out" 2>&1
if from "3 files" "$TMP/dtouch.out" && [ "$(ls "$DC"/*.data | wc -l)" -eq 3 ]; then
    ok "a data file with another modification time is another entry (decoded once: the test set then reads it)"
else not_ok "a touched data file is another entry" "$(cat "$TMP/dtouch.out"; ls -la "$DC")"; fi
before=$(ls -l --time-style=+%s.%N "$DC")
drun --no-cache > "$TMP/dnc.out" 2>&1
if [ "$before" = "$(ls -l --time-style=+%s.%N "$DC")" ] && ! grep -q 'from the cache' "$TMP/dnc.out"; then
    ok "--no-cache neither reads nor writes the data cache"
else not_ok "--no-cache and the data cache" "$(cat "$TMP/dnc.out")"; fi
DNIC_CACHE_DIR="$TMP/a-file/sub" timeout 60 "$DNIC" "$D/m.dni" --run --no-progress --set train.epochs=5 > "$TMP/dro.out" 2>&1; rc=$?
if [ $rc -eq 0 ] && grep -q "^dnic: note: not caching the decoded data of '$D/img.gz': cannot create '.*a-file/sub'" "$TMP/dro.out" &&
    diff <(lines "$TMP/d0.out") <(lines "$TMP/dro.out") > /dev/null; then
    ok "a data cache that cannot be written is a note; the run goes on"
else not_ok "an unwritable data cache is a note" "rc=$rc $(cat "$TMP/dro.out")"; fi
ls "$DC" | grep -v '\.data$\|\.o$' > "$TMP/dstray" && not_ok "no temporary files are left in the data cache" "$(cat "$TMP/dstray")" ||
    ok "no temporary files are left in the data cache"
finish
