# TAP helpers for the shell tests: source it, call ok/not_ok/check, then finish.
# DNIC is the dnic binary; top_srcdir the source tree (both set by `make check`).
: "${DNIC:=./dnic}"
: "${top_srcdir:=.}"
tap_n=0
tap_failed=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/dnic-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

ok() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $1"; }
not_ok() {
    tap_n=$((tap_n + 1)); tap_failed=$((tap_failed + 1))
    echo "not ok $tap_n - $1"
    shift
    for line in "$@"; do printf '%s\n' "$line" | sed 's/^/# /'; done
}
# check NAME COMMAND...: passes when the command exits 0.
check() {
    name=$1; shift
    if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "$out"; fi
}
finish() { echo "1..$tap_n"; exit 0; }
