#!/bin/sh
# The diagnostics corpus as a TAP producer.
#
#   tests/dni/fail/*.dni  must make `dnic FILE --check` exit 1 and print exactly the errors
#                         the file expects, compared as a set:
#                           # expect-error: COL: MESSAGE            on the offending line itself
#                           # expect-error-at LINE:COL: MESSAGE     anywhere (LINE may be --set:1)
#                           # expect-flag-error: MESSAGE           anywhere: an error about a
#                                                                 command-line flag (dnic: error: ...)
#   tests/dni/pass/*.dni  must exit 0 with nothing on stderr.
#   Either may carry `# args: ...` lines: extra arguments, split on blanks (no quoting).
#   Any exit status >= 2, a signal, or "internal error" in the output fails a test.
#
# Environment: DNIC (the binary, default ./dnic), top_srcdir (default .).  dnic runs from
# top_srcdir with paths relative to it, so messages read tests/dni/fail/NAME.dni:L:C.
# A failing test is a `not ok` line; the exit status is non-zero only on harness errors.
#
# dnic runs once per file and nothing else does: one awk reads all the results at the end.
set -u
set -f # `# args:` lines are split on blanks but never globbed

DNIC=${DNIC:-./dnic}
top_srcdir=${top_srcdir:-.}

bail() {
    echo "Bail out! $*"
    exit 2
}

case $DNIC in
/*) ;;
*/*) DNIC=$(pwd)/$DNIC ;;
esac
cd "$top_srcdir" 2>/dev/null || bail "cannot enter top_srcdir '$top_srcdir'"
case $DNIC in
*/*) [ -x "$DNIC" ] || bail "DNIC '$DNIC' is not an executable file" ;;
*) command -v "$DNIC" >/dev/null 2>&1 || bail "DNIC '$DNIC' is not in PATH" ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dnic-corpus.XXXXXX") || bail "cannot create a temporary directory"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP

# A hung dnic must not hang the suite.
TIMEOUT=
if command -v timeout >/dev/null 2>&1; then
    TIMEOUT="timeout -k 5 60"
fi

set +f
n=0
for f in tests/dni/fail/*.dni tests/dni/pass/*.dni; do
    [ -f "$f" ] && n=$((n + 1))
done
[ "$n" -gt 0 ] || bail "no test files under $top_srcdir/tests/dni"
echo "1..$n"

# ---- run dnic on every file; $tmp/list has one line per file: K FILE STATUS ARGS ----------
k=0
: >"$tmp/list" || bail "cannot write in $tmp"
for f in tests/dni/fail/*.dni tests/dni/pass/*.dni; do
    [ -f "$f" ] || continue
    k=$((k + 1))
    args=
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in
        "# args:"*) args="$args ${line#\# args:}" ;;
        esac
    done <"$f"
    set -f
    # shellcheck disable=SC2086 # the args are split on blanks on purpose
    $TIMEOUT "$DNIC" "$f" --check $args >"$tmp/$k.out" 2>"$tmp/$k.err" </dev/null
    echo "$k $f $? $args" >>"$tmp/list"
    set +f
done
set -f

# ---- judge every result ------------------------------------------------------------------
awk -v tmp="$tmp" -v dnic="${DNIC##*/}" '
function trim(s) { sub(/[ \t\r]+$/, "", s); return s }
function note(msg) { diag[++ndiag] = "# " msg }
# Reads the expectations of model file `path` into want[] (and malformed ones into diag[]).
function expectations(path, kind,    line, ln, rest, loc, key) {
    ln = 0
    while ((getline line < path) > 0) {
        ln++
        if (match(line, /#[ \t]*expect-error:/)) {
            rest = substr(line, RSTART + RLENGTH)
            sub(/^[ \t]+/, "", rest)
            if (!match(rest, /^[0-9]+: /)) { note(path ":" ln ": malformed expectation: want # expect-error: COL: MESSAGE"); continue }
            key = path ":" ln ":" substr(rest, 1, RLENGTH - 2) ": " trim(substr(rest, RLENGTH + 1))
        } else if (match(line, /#[ \t]*expect-error-at[ \t]/)) {
            rest = substr(line, RSTART + RLENGTH)
            sub(/^[ \t]+/, "", rest)
            if (!match(rest, /^(--set:)?[0-9]+:[0-9]+: /)) { note(path ":" ln ": malformed expectation: want # expect-error-at LINE:COL: MESSAGE"); continue }
            loc = substr(rest, 1, RLENGTH - 2)
            key = (loc ~ /^--set:/ ? "" : path ":") loc ": " trim(substr(rest, RLENGTH + 1))
        } else if (match(line, /#[ \t]*expect-flag-error:/)) {
            rest = substr(line, RSTART + RLENGTH)
            sub(/^[ \t]+/, "", rest)
            key = "dnic: " trim(rest)
        } else if (line ~ /expect-err/) {
            note(path ":" ln ": malformed expectation: unknown directive"); continue
        } else {
            continue
        }
        if (key in want) { note(path ":" ln ": the same error is expected twice"); continue }
        want[key] = 1
        nwant++
    }
    close(path)
    if (ln == 0) note("cannot read " path " (or it is empty)")
    if (kind == "fail" && nwant == 0) note("the file expects no error: add # expect-error lines")
    if (kind == "pass" && nwant > 0) note("a pass file cannot expect errors")
}
{
    k = $1; path = $2; status = $3
    args = ""
    for (i = 4; i <= NF; i++) args = args " " $i
    name = substr(path, length("tests/dni/") + 1)
    kind = substr(name, 1, index(name, "/") - 1)
    split("", want); split("", got); split("", errlines); ndiag = 0; nwant = 0; nerr = 0

    if (kind == "fail") {
        if (status == 0) note("exit status 0: the model was accepted, expected exit status 1")
        else if (status == 124) note("dnic timed out")
        else if (status > 128) note("exit status " status ": killed by signal " (status - 128) ", expected 1")
        else if (status != 1) note("exit status " status ", expected 1")
    } else {
        if (status == 124) note("dnic timed out")
        else if (status > 128) note("exit status " status ": killed by signal " (status - 128) ", expected 0")
        else if (status != 0) note("exit status " status ", expected 0")
    }
    expectations(path, kind)

    internal = 0
    file = tmp "/" k ".out"
    while ((getline line < file) > 0)
        if (tolower(line) ~ /internal error/) internal = 1
    close(file)
    file = tmp "/" k ".err"
    while ((getline line < file) > 0) {
        errlines[++nerr] = line
        if (tolower(line) ~ /internal error/) internal = 1
        if (line ~ /^[^ ]+:[0-9]+:[0-9]+: error: / || line ~ /^dnic: error: /) {
            i = index(line, ": error: ")
            got[substr(line, 1, i - 1) ": " trim(substr(line, i + 9))] = 1
        }
    }
    close(file)
    if (internal) note("the output mentions an internal error")
    if (kind == "pass" && status == 0 && nerr > 0) note("exit status 0, but stderr is not empty")
    for (key in want) if (!(key in got)) note("expected, not printed: " key)
    for (key in got) if (!(key in want)) note("printed, not expected: " key)

    if (ndiag == 0) {
        print "ok " k " - " name
        next
    }
    failed++
    print "not ok " k " - " name
    for (i = 1; i <= ndiag; i++) print diag[i]
    print "# command: " dnic " " path " --check" args
    print "# stderr:"
    for (i = 1; i <= nerr; i++) print "#   " substr(errlines[i], 1, 200)
}
END {
    print "# " (NR - failed) " of " NR " passed"
    exit NR == 0 ? 2 : 0
}' "$tmp/list" || bail "awk failed"
exit 0
