#!/bin/sh
# End to end: dnic reproduces the loss lines printed in seed notebook 001 (tests/e2e/expected,
# copied from the notebook): the DNI run to every printed digit, the backprop baseline to at
# least 9 significant digits.
. "${top_srcdir:-.}/tests/lib.sh"
cd "$top_srcdir" || exit 1

# same_numbers EXPECTED ACTUAL RELTOL: the lines have the same words and numbers within RELTOL.
same_numbers() {
    awk -v tol="$3" '
        NR == FNR { want[FNR] = $0; n = FNR; next }
        /^#/ { next }
        { got[++m] = $0 }
        END {
            if (m != n) { printf "expected %d lines, got %d\n", n, m; exit 1 }
            for (i = 1; i <= n; i++) {
                a = want[i]; b = got[i]
                gsub(/[0-9.e+-]+/, "N", a); gsub(/[0-9.e+-]+/, "N", b)
                if (a != b) { printf "line %d: expected \"%s\", got \"%s\"\n", i, want[i], got[i]; exit 1 }
                na = split(want[i], x, /[^0-9.e+-]+/); split(got[i], y, /[^0-9.e+-]+/)
                for (k = 1; k <= na; k++) if (x[k] != "") {
                    d = x[k] - y[k]; if (d < 0) d = -d
                    r = x[k] < 0 ? -x[k] : x[k]
                    if (d > tol * r) { printf "line %d: %s vs %s (relative %.3g)\n", i, x[k], y[k], d / r; exit 1 }
                }
            }
        }' "$1" "$2"
}

"$DNIC" examples/seed_dni.dni --run --no-progress > "$TMP/dni.out" 2> "$TMP/dni.err"
if diff tests/e2e/expected/seed_dni.txt "$TMP/dni.out" | grep '^[<>] Iter' > "$TMP/dni.diff"; then
    not_ok "seed_dni reproduces notebook 001 to every printed digit" "$(cat "$TMP/dni.diff" "$TMP/dni.err")"
else
    grep -c '^Iter' "$TMP/dni.out" | grep -qx 10 && ok "seed_dni reproduces notebook 001 to every printed digit" ||
        not_ok "seed_dni reproduces notebook 001 to every printed digit" "$(cat "$TMP/dni.out" "$TMP/dni.err")"
fi
grep -q '^# seed_dni: 100000 steps in .* steps/s); compile' "$TMP/dni.out" &&
    ok "seed_dni prints a summary" || not_ok "seed_dni prints a summary" "$(tail -1 "$TMP/dni.out")"

"$DNIC" examples/seed_backprop.dni --run --no-progress > "$TMP/bp.out" 2>&1
if msg=$(same_numbers tests/e2e/expected/seed_backprop.txt "$TMP/bp.out" 1e-9); then
    ok "seed_backprop reproduces notebook 001's baseline to 9 significant digits"
else
    not_ok "seed_backprop reproduces notebook 001's baseline to 9 significant digits" "$msg"
fi
# the comparison itself must be able to fail
sed 's/0.0370760733124/0.0370760734124/' tests/e2e/expected/seed_backprop.txt > "$TMP/bad.txt"
if same_numbers "$TMP/bad.txt" "$TMP/bp.out" 1e-9 > /dev/null; then
    not_ok "the 9-digit comparison rejects a difference in the 9th digit"
else
    ok "the 9-digit comparison rejects a difference in the 9th digit"
fi
finish
