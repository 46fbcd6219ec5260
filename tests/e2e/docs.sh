#!/bin/bash
# End to end: the sample output the README and docs/ quote is what dnic prints (issue 17's
# nits).  One run of examples/seed_dni.dni; `...` in a quoted line stands for anything, and in
# docs/language.md's summary line every number stands for any number.
. "${top_srcdir:-.}/tests/lib.sh"
cd "$top_srcdir" || exit 1

out=$("$DNIC" examples/seed_dni.dni --run --no-cache --no-progress --log "$TMP/log.csv" 2>&1) ||
    not_ok "seed_dni runs" "$out"
summary=$(printf '%s\n' "$out" | grep '^# seed_dni: ')

# the lines of the README's first code block, after its `$ ./dnic ...` line
readme=$(awk '/^```$/ { n++; next } n == 1 && !/^\$ /' README.md)
while IFS= read -r line; do
    case $line in
    Iter:*)
        if printf '%s\n' "$out" | grep -qxF -- "$line"; then ok "README quotes: $line"
        else not_ok "README quotes a line the run does not print: $line" "$out"; fi ;;
    "# "*)
        # `...` matches anything; everything else literally
        re=$(printf '%s' "$line" | sed 's/[][\.*^$+?(){}|/]/\\&/g; s/\\\.\\\.\\\./.*/g')
        if printf '%s\n' "$summary" | grep -qE -- "^$re\$"; then ok "README's summary line has the run's shape"
        else not_ok "README's summary line differs from the run's" "README: $line" "run:    $summary"; fi ;;
    esac
done <<<"$readme"

# docs/language.md section 8: its first report line, and its summary line up to the numbers
sec8=$(awk '/^## 8\./ { on = 1; next } /^## 9\./ { on = 0 } on' docs/language.md)
first=$(printf '%s\n' "$sec8" | grep -m1 '^Iter:999 ')
if printf '%s\n' "$out" | grep -qxF -- "$first"; then ok "language.md 8 quotes: $first"
else not_ok "language.md 8 quotes a line the run does not print: $first" "$out"; fi
numbers() { sed -E 's/[0-9][0-9.e+]*/N/g; s/N threads?/N threads/g'; }
doc=$(printf '%s\n' "$sec8" | grep -m1 '^# seed_dni: ' | numbers)
run=$(printf '%s\n' "$summary" | numbers)
if [ "$doc" = "$run" ]; then ok "language.md 8's summary line has the run's shape"
else not_ok "language.md 8's summary line differs from the run's" "doc: $doc" "run: $run"; fi

# docs/language.md section 11: --check's summary, whole
want=$(awk '/^\$ \.\/dnic examples\/seed_dni\.dni$/ { on = 1; next } on && /^```$/ { exit } on' docs/language.md)
got=$("$DNIC" examples/seed_dni.dni 2>&1)
if [ -n "$want" ] && [ "$want" = "$got" ]; then ok "language.md 11 quotes --check's summary"
else not_ok "language.md 11's --check summary differs" "doc:" "$want" "run:" "$got"; fi

# docs/files.md: the log's header and the start of its last row
hdr=$(sed -n '/^## Metrics/,/^## /p' docs/files.md | grep -m1 '^    iter,' | sed 's/^    //')
row=$(sed -n '/^## Metrics/,/^## /p' docs/files.md | grep -m1 '^    999,' | sed 's/^    //; s/,[0-9.]*$/,/')
if [ "$(head -1 "$TMP/log.csv")" = "$hdr" ]; then ok "files.md quotes the log's header"
else not_ok "files.md's log header differs" "doc: $hdr" "log: $(head -1 "$TMP/log.csv")"; fi
if grep -q "^$row" "$TMP/log.csv"; then ok "files.md quotes the log's row: $row"
else not_ok "files.md's log row differs: $row" "$(cat "$TMP/log.csv")"; fi

finish
