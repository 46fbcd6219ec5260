#!/bin/bash
# End to end: the register tiles of codegen.c's matrix products are chosen per ISA (6 rows by
# 4 vectors with AVX-512's 32 registers, 6 by 2 with AVX2's 16), and the choice changes no
# result: a float32 model whose products pack and leave rows and columns over from every tile
# (tests/e2e/models/tiles.dni), compiled for x86-64-v3 (AVX2) and for znver5 (AVX-512, where
# this CPU has it), trains to the same losses and weights bit for bit as dnic --run's JIT.
. "${top_srcdir:-.}/tests/lib.sh"
: "${top_builddir:=.}" "${CC:=cc}"
cd "$top_srcdir" || exit 1
M=tests/e2e/models/tiles.dni

# the JIT's run on this CPU: 40 steps, each step's loss (the sum, as train_step returns it)
"$DNIC" $M --run --no-progress --set loss.report_per=sum --log "$TMP/run.csv" --save-weights "$TMP/run.st" \
    > "$TMP/run.out" 2>&1
tail -n +2 "$TMP/run.csv" | awk -F, '{print $1, $3}' > "$TMP/run.txt"
[ "$(wc -l < "$TMP/run.txt")" -eq 40 ] && ok "dnic --run logs 40 steps" || not_ok "dnic --run logs 40 steps" "$(cat "$TMP/run.out")"

# a driver for the object in the model's float type (examples/embed/main.c is float64's): the
# seeds' data as dnic --run makes it, each step's loss to 17 digits, then the weights
cat > "$TMP/drv.c" << 'C'
#include <stdio.h>
#include <stdlib.h>
#include "binadd.h"
#include "seed_dni.h"
#define T __typeof__(seed_dni_train_step((void *)0, (void *)0, (void *)0))
enum { EX = 100, IN = seed_dni_INPUT_SIZE, LAB = seed_dni_LABEL_SIZE, B = seed_dni_BATCH };
int main(int argc, char **argv)
{
    static double xd[EX * IN], yd[EX * LAB];
    static T x[EX * IN], y[EX * LAB];
    dnic_rng rng;
    dnic_rng_seed(&rng, 1);
    if (argc != 3 || dnic_binadd_generate(&rng, 8, EX, xd, yd) != 0)
        return 1;
    for (int i = 0; i < EX * IN; i++)
        x[i] = (T)xd[i];
    for (int i = 0; i < EX * LAB; i++)
        y[i] = (T)yd[i];
    seed_dni *m = seed_dni_create();
    if (!m)
        return 1;
    for (int s = 0; s < atoi(argv[1]); s++) {
        int b = s % (EX / B);
        printf("step %d loss %.17g\n", s, (double)seed_dni_train_step(m, x + b * B * IN, y + b * B * LAB));
    }
    int rc = seed_dni_save(m, argv[2]) != 0;
    seed_dni_free(m);
    return rc;
}
C

cpus="x86-64-v3"
grep -qw avx512f /proc/cpuinfo 2> /dev/null && cpus="$cpus znver5"
for cpu in $cpus; do
    mkdir -p "$TMP/$cpu"
    if ! "$DNIC" $M -c --cpu "$cpu" --prefix seed_dni -o "$TMP/$cpu/seed_dni.o" > "$TMP/$cpu/c.out" 2>&1 ||
        ! $CC -std=c11 ${SAN_CFLAGS:-} -I"$TMP/$cpu" -I"$top_srcdir/runtime" -I"$top_srcdir/include" "$TMP/drv.c" \
            "$TMP/$cpu/seed_dni.o" "$top_builddir/libdnic.a" -lm -o "$TMP/$cpu/embed" 2> "$TMP/$cpu/cc.err"; then
        not_ok "--cpu $cpu: the object builds and links" "$(cat "$TMP/$cpu/c.out" "$TMP/$cpu/cc.err")"
        continue
    fi
    regs=$(objdump -d "$TMP/$cpu/seed_dni.o" | grep -oE '%[xyz]mm[0-9]+' | sort -u | tr '\n' ' ')
    case $cpu in
    x86-64-v3)
        case $regs in *zmm* | *mm1[6-9]* | *mm2[0-9]* | *mm3[01]*) not_ok "--cpu x86-64-v3: AVX2 registers only" "$regs" ;;
            *) ok "--cpu x86-64-v3: AVX2 registers only" ;; esac ;;
    znver5)
        case $regs in *zmm2[0-9]*) ok "--cpu znver5: the tiles use AVX-512's upper registers" ;;
            *) not_ok "--cpu znver5: the tiles use AVX-512's upper registers" "$regs" ;; esac ;;
    esac
    "$TMP/$cpu/embed" 40 "$TMP/$cpu/emb.st" > "$TMP/$cpu/embed.out" 2>&1
    sed -n 's/^step \([0-9]*\) loss \(.*\)/\1 \2/p' "$TMP/$cpu/embed.out" > "$TMP/$cpu/emb.txt"
    # train_step returns the float32 loss, the log the float64 sum: equal to float32's precision
    if [ "$(wc -l < "$TMP/$cpu/emb.txt")" -eq 40 ] && awk 'NR == FNR { a[$1] = $2; next }
        { d = a[$1] - $2; if (d < 0) d = -d; if (!($1 in a) || d > 1e-6 * $2) exit 1 }' "$TMP/run.txt" "$TMP/$cpu/emb.txt"; then
        ok "--cpu $cpu: the 40 losses equal the JIT's (to float32's precision)"
    else
        not_ok "--cpu $cpu: the 40 losses equal the JIT's (to float32's precision)" "$(paste "$TMP/$cpu/emb.txt" "$TMP/run.txt" | head -3)"
    fi
    cmp -s "$TMP/$cpu/emb.st" "$TMP/run.st" && ok "--cpu $cpu: the trained weights equal the JIT's bit for bit" ||
        not_ok "--cpu $cpu: the trained weights equal the JIT's bit for bit"
done
if [ -d "$TMP/znver5" ]; then
    cmp -s "$TMP/x86-64-v3/embed.out" "$TMP/znver5/embed.out" && ok "x86-64-v3 and znver5: the same 40 losses to 17 digits" ||
        not_ok "x86-64-v3 and znver5: the same 40 losses to 17 digits" "$(diff "$TMP/x86-64-v3/embed.out" "$TMP/znver5/embed.out" | head -4)"
fi
finish
