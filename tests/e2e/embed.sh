#!/bin/bash
# End to end: `dnic -c` emits an object and header that a C program links with the runtime
# alone; its train_step and predict compute exactly what `dnic --run` computes (bit for bit in
# float64); the object is reproducible and exports only the documented symbols.
. "${top_srcdir:-.}/tests/lib.sh"
: "${top_builddir:=.}" "${CC:=cc}"
cd "$top_srcdir" || exit 1
M=examples/seed_dni.dni

check "dnic -c writes an object and a header" "$DNIC" $M -c -o "$TMP/seed_dni.o"
[ -f "$TMP/seed_dni.h" ] && ok "the header goes beside the object" || not_ok "the header goes beside the object"
"$DNIC" $M -c -o "$TMP/again.o" --header "$TMP/again.h" > /dev/null 2>&1
cmp -s "$TMP/seed_dni.o" "$TMP/again.o" && ok "the same model gives a byte-identical object" ||
    not_ok "the same model gives a byte-identical object"

want="seed_dni_create seed_dni_error seed_dni_free seed_dni_load seed_dni_predict seed_dni_save seed_dni_train_step"
got=$(nm -g --defined-only "$TMP/seed_dni.o" | awk '{print $3}' | sort | tr '\n' ' ' | sed 's/ $//')
[ "$got" = "$want" ] && ok "the object exports only the documented symbols" ||
    not_ok "the object exports only the documented symbols" "got: $got"
undef=$(nm -u "$TMP/seed_dni.o" | awk '{print $2}' | grep -v '^dnic_rt_' | sort | tr '\n' ' ')
[ "$undef" = "exp " ] && ok "beyond the runtime it needs only libm's exp" || not_ok "beyond the runtime it needs only libm's exp" "$undef"

# the vector width follows the CPU (compiler/codegen.c, dnic_vector_bits): 512-bit products
# for Zen 5, whose AVX-512 units are full width; 256-bit for Zen 4, which splits them
mulpd() { objdump -d "$1" | grep -c "vmulpd.*%$2"; }
"$DNIC" $M -c --cpu znver5 -o "$TMP/z5.o" > /dev/null 2>&1 && "$DNIC" $M -c --cpu znver4 -o "$TMP/z4.o" > /dev/null 2>&1
z5=$(mulpd "$TMP/z5.o" zmm)/$(mulpd "$TMP/z5.o" ymm) z4=$(mulpd "$TMP/z4.o" ymm)
case $z5 in 0/* | */[1-9]*) not_ok "--cpu znver5 multiplies in 512-bit registers only" "zmm/ymm: $z5" ;;
    *) ok "--cpu znver5 multiplies in 512-bit registers only" ;; esac
[ "${z4:-0}" -gt 0 ] && ok "--cpu znver4 multiplies in 256-bit registers" || not_ok "--cpu znver4 multiplies in 256-bit registers"

if $CC -std=c11 ${SAN_CFLAGS:-} -Wall -Wextra -Werror -I"$TMP" -I"$top_srcdir/runtime" -I"$top_srcdir/include" examples/embed/main.c \
    "$TMP/seed_dni.o" "$top_builddir/libdnic.a" -lm -o "$TMP/embed" 2> "$TMP/cc.err"; then
    ok "examples/embed links with cc and libdnic.a alone"
else
    not_ok "examples/embed links with cc and libdnic.a alone" "$(cat "$TMP/cc.err")"
fi
"$TMP/embed" 50 "$TMP/emb.st" > "$TMP/embed.out" 2>&1
check "examples/embed runs" test -s "$TMP/embed.out"
grep -q "^a missing file: cannot open 'no-such-file.safetensors': No such file or directory$" "$TMP/embed.out" &&
    ok "load errors reach the program" || not_ok "load errors reach the program" "$(tail -2 "$TMP/embed.out")"

# dnic --run for the same 50 steps, reporting every step
"$DNIC" $M --run --no-progress --set train.steps=50 --set train.report_every=1 --log "$TMP/run.csv" \
    --save-weights "$TMP/run.st" --save-predictions "$TMP/pred.st" > "$TMP/run.out" 2>&1
sed -n 's/^step \([0-9]*\) loss \(.*\)/\1 \2/p' "$TMP/embed.out" > "$TMP/a.txt"
tail -n +2 "$TMP/run.csv" | awk -F, '{print $1, $3}' > "$TMP/b.txt"
if [ -s "$TMP/a.txt" ] && diff "$TMP/a.txt" "$TMP/b.txt" > /dev/null; then ok "train_step's 50 losses equal dnic --run's to 17 digits"
else not_ok "train_step's 50 losses equal dnic --run's to 17 digits" "$(diff "$TMP/a.txt" "$TMP/b.txt" | head -5)" "$(cat "$TMP/run.out")"; fi
cmp -s "$TMP/emb.st" "$TMP/run.st" && ok "the trained weights equal dnic --run's bit for bit" ||
    not_ok "the trained weights equal dnic --run's bit for bit"
# predict: the first three rows of y_pred, as %.17g, against the program's
hlen=$(od -An -t u8 -N 8 "$TMP/pred.st" | tr -d ' ')
od -An -v -t f8 -j $((8 + hlen)) -N $((3 * 8 * 8)) "$TMP/pred.st" | tr -s ' ' '\n' | sed '/^$/d' > "$TMP/p1.txt"
sed -n 's/^predict [0-9]*: //p' "$TMP/embed.out" | tr ' ' '\n' > "$TMP/p2.txt"
if [ "$(wc -l < "$TMP/p1.txt")" -eq 24 ] && awk 'NR == FNR { a[FNR] = $1; next } { if (a[FNR] != $1 + 0) exit 1 }' \
    "$TMP/p1.txt" "$TMP/p2.txt"; then ok "predict equals the JIT's predictions"
else not_ok "predict equals the JIT's predictions" "$(paste "$TMP/p1.txt" "$TMP/p2.txt" | head -3)"; fi

# a graph with batch normalisation, merges and SG modules (tests/e2e/models/graph_dni.dni),
# compiled under the seed model's prefix so that the same program drives it
G=tests/e2e/models/graph_dni.dni
mkdir -p "$TMP/g"
if "$DNIC" $G -c -o "$TMP/g/seed_dni.o" --prefix seed_dni > "$TMP/g/c.out" 2>&1 &&
    $CC -std=c11 ${SAN_CFLAGS:-} -I"$TMP/g" -I"$top_srcdir/runtime" -I"$top_srcdir/include" examples/embed/main.c \
        "$TMP/g/seed_dni.o" "$top_builddir/libdnic.a" -lm -o "$TMP/g/embed" 2> "$TMP/g/cc.err"; then
    "$TMP/g/embed" 50 "$TMP/g/emb.st" > "$TMP/g/embed.out" 2>&1
    # train_step returns the step's sum: the log's too with report_per = sum (else per example)
    "$DNIC" $G --run --no-progress --set train.lag=0 --set train.steps=50 --set train.report_every=1 \
        --set loss.report_per=sum --log "$TMP/g/run.csv" \
        --save-weights "$TMP/g/run.st" --save-predictions "$TMP/g/pred.st" > "$TMP/g/run.out" 2>&1
    sed -n 's/^step \([0-9]*\) loss \(.*\)/\1 \2/p' "$TMP/g/embed.out" > "$TMP/g/a.txt"
    tail -n +2 "$TMP/g/run.csv" | awk -F, '{print $1, $3}' > "$TMP/g/b.txt"
    if [ -s "$TMP/g/a.txt" ] && diff "$TMP/g/a.txt" "$TMP/g/b.txt" > /dev/null; then
        ok "a graph with batch normalisation: train_step's 50 losses equal dnic --run's"
    else
        not_ok "a graph with batch normalisation: train_step's losses equal dnic --run's" "$(diff "$TMP/g/a.txt" "$TMP/g/b.txt" | head -5)"
    fi
    cmp -s "$TMP/g/emb.st" "$TMP/g/run.st" && ok "a graph: the trained weights and running averages equal dnic --run's" ||
        not_ok "a graph: the trained weights and running averages equal dnic --run's"
    # predict uses the running averages: the first three rows against the JIT's predictions
    hlen=$(od -An -t u8 -N 8 "$TMP/g/pred.st" | tr -d ' ')
    od -An -v -t f8 -j $((8 + hlen)) -N $((3 * 8 * 8)) "$TMP/g/pred.st" | tr -s ' ' '\n' | sed '/^$/d' > "$TMP/g/p1.txt"
    sed -n 's/^predict [0-9]*: //p' "$TMP/g/embed.out" | tr ' ' '\n' > "$TMP/g/p2.txt"
    if [ "$(wc -l < "$TMP/g/p1.txt")" -eq 24 ] && awk 'NR == FNR { a[FNR] = $1; next } { if (a[FNR] != $1 + 0) exit 1 }' \
        "$TMP/g/p1.txt" "$TMP/g/p2.txt"; then ok "a graph: predict equals the JIT's predictions"
    else not_ok "a graph: predict equals the JIT's predictions" "$(paste "$TMP/g/p1.txt" "$TMP/g/p2.txt" | head -3)"; fi
else
    not_ok "a graph with batch normalisation compiles to an object and links" "$(cat "$TMP/g/c.out" "$TMP/g/cc.err" 2>/dev/null)"
fi

expect_fail() { # NAME PATTERN ARGS...
    name=$1 pat=$2; shift 2
    out=$("$DNIC" "$@" 2>&1); rc=$?
    if [ $rc -eq 1 ] && printf '%s\n' "$out" | grep -qF -- "$pat"; then ok "$name"; else not_ok "$name" "exit $rc" "$out"; fi
}
expect_fail "a prefix must be a C identifier" "error: --prefix '9x' is not a C identifier" $M -c -o "$TMP/x.o" --prefix 9x
expect_fail "-o needs -c" "error: -o works with -c" $M -o "$TMP/x.o"
expect_fail "an unknown target is an error" "error: unknown target" $M -c -o "$TMP/x.o" --target nonsense-cpu-none
expect_fail "an unknown CPU is an error, not LLVM's abort" \
    "error: cannot compile for CPU 'nonsense' on 'x86_64-pc-linux-gnu': 'nonsense' is not a recognized processor for this target (llc-19" \
    $M -c -o "$TMP/x.o" --cpu nonsense --target x86_64-pc-linux-gnu
expect_fail "a CPU without 64-bit mode is an error, not LLVM's abort" \
    "error: cannot compile for CPU 'i386' on 'x86_64-pc-linux-gnu': 64-bit code requested on a subtarget that doesn't support it!" \
    $M -c -o "$TMP/x.o" --cpu i386 --target x86_64-pc-linux-gnu
[ ! -e "$TMP/x.o" ] && ok "a refused CPU leaves no object" || not_ok "a refused CPU leaves no object"
# another architecture without --cpu: its generic CPU, not x86-64-v3 (which LLVM would warn about and ignore)
out=$("$DNIC" $M -c -o "$TMP/arm.o" --target aarch64-linux-gnu 2>&1); rc=$?
if [ $rc -eq 0 ] && [ -z "$out" ] && od -An -tx1 -j18 -N2 "$TMP/arm.o" | grep -q 'b7 00'; then
    ok "--target aarch64 without --cpu: an AArch64 object, no warning"
else not_ok "--target aarch64 without --cpu: an AArch64 object, no warning" "exit $rc" "$out"; fi
"$DNIC" $M -c -o "$TMP/p.o" --prefix adder > /dev/null 2>&1 && grep -q '^adder \*adder_create(void);$' "$TMP/p.h" &&
    ok "--prefix names the symbols" || not_ok "--prefix names the symbols"
finish
