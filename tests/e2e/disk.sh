#!/bin/bash
# A full disk and a read-only file system, on a 64 KiB tmpfs (needs root and mount; otherwise
# every check is skipped and says why): each write fails with a message naming the file and
# the reason, exit 1, the previous file stays as it was and no temporary is left.
. "${top_srcdir:-.}/tests/lib.sh"
cd "$TMP" || exit 1
cp "$top_srcdir"/tests/hostile/files/csv.dni "$top_srcdir"/tests/hostile/files/d.csv .
mkdir disk
why=
if [ "$(id -u)" != 0 ]; then
    why="not root: mounting a 64 KiB tmpfs needs root"
elif ! err=$(mount -t tmpfs -o size=64k dnic-test "$TMP/disk" 2>&1); then
    why="mount -t tmpfs failed here: $err"
fi
if [ -n "$why" ]; then
    for t in "a full disk: --save-weights" "a full disk: --checkpoint" "a full disk: --log" \
        "a disk that fills during the run" "a read-only file system"; do
        ok "$t # SKIP $why"
    done
    finish
fi
trap 'umount "$TMP/disk" 2> /dev/null; rm -rf "$TMP"' EXIT

run() { timeout 60 "$DNIC" csv.dni --run --no-progress "$@"; }
run --save-weights disk/w.st --checkpoint disk/c.st --log disk/l.csv > /dev/null 2>&1
cp disk/w.st w.old; cp disk/c.st c.old; cp disk/l.csv l.old
head -c 100000 /dev/zero > disk/fill 2> /dev/null # as much as fits
# expect NAME FILE ARGS...: exit 1, "cannot write 'FILE': REASON", the old file whole, no temporary
expect() {
    name=$1 file=$2 reason=$3; shift 3
    out=$(run "$@" 2>&1); rc=$?
    left=$(ls disk | grep -c '\.tmp-')
    if [ $rc -eq 1 ] && printf '%s\n' "$out" | grep -qxF "dnic: error: cannot write '$file': $reason" &&
        cmp -s "$file" "$(basename "${file%.*}").old" && [ "$left" -eq 0 ]; then
        ok "$name"
    else
        not_ok "$name" "exit $rc, $left temporaries" "$out"
    fi
}
expect "a full disk: --save-weights" disk/w.st "No space left on device" --save-weights disk/w.st
expect "a full disk: --checkpoint" disk/c.st "No space left on device" --checkpoint disk/c.st
expect "a full disk: --log" disk/l.csv "No space left on device" --log disk/l.csv
rm -f disk/fill
# a log that outgrows the disk halfway through the run: the reason is still the disk's
out=$(timeout 120 "$DNIC" "$top_srcdir"/examples/seed_dni.dni --run --no-progress --set train.epochs=3000 \
    --set train.report_every=1 --log disk/big.csv 2>&1); rc=$?
[ $rc -eq 1 ] && printf '%s\n' "$out" | grep -qxF "dnic: error: cannot write 'disk/big.csv': No space left on device" &&
    [ ! -e disk/big.csv ] && [ "$(ls disk | grep -c '\.tmp-')" -eq 0 ] &&
    ok "a disk that fills during the run: the log's write fails with the reason, nothing is left" ||
    not_ok "a disk that fills during the run" "exit $rc" "$out" "$(ls -la disk)"
mount -o remount,ro "$TMP/disk"
expect "a read-only file system" disk/w.st "Read-only file system" --save-weights disk/w.st
finish
