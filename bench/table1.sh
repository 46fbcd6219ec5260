#!/bin/bash
# The paper's Table 1 on Fashion-MNIST (docs/results.md): FCNs of 3 to 6 hidden layers of 256
# units (Linear -> BN -> ReLU), trained by backprop, DNI (a 2 x 1024 MLP SG module after every
# hidden layer), cDNI (linear SG modules that see the labels) and "no backprop" (only the output
# layer trained), each for EPOCHS epochs with seeds 1..SEEDS; prints one line per run and then
# the median test error of each cell.  Usage: bench/table1.sh [DNIC] [EPOCHS] [SEEDS] [OUTDIR]
set -u
DNIC=${1:-./dnic}
EPOCHS=${2:-20}
SEEDS=${3:-3}
OUT=${4:-table1}
mkdir -p "$OUT"
M=examples/fashion_fcn6_cdni.dni
declare -A COL=(
    [backprop]="--set train.mode=backprop"
    [dni]="--set sg.h.input=output --set sg.h.form=mlp --set sg.h.hidden=[1024,1024]"
    [cdni]=""
    [nobp]="--set train.mode=backprop --set layer.h.trainable=false"
)
for depth in 3 4 5 6; do
    for col in backprop dni cdni nobp; do
        for seed in $(seq 1 "$SEEDS"); do
            f="$OUT/d${depth}_${col}_s${seed}"
            [ -s "$f.out" ] && grep -q '^# ' "$f.out" && continue
            # shellcheck disable=SC2086
            "$DNIC" "$M" --run --no-progress --set layer.h.repeat="$depth" --set train.epochs="$EPOCHS" \
                --set train.seed="$seed" ${COL[$col]} --log "$f.csv" > "$f.out" 2>&1
            acc=$(sed -n 's/.* accuracy:\([0-9.]*\)%.*/\1/p' "$f.out" | tail -1)
            echo "depth $depth $col seed $seed: test accuracy $acc% ($(tail -1 "$f.out" | sed 's/.* in \([0-9.]* s\).*/\1/'))"
        done
    done
done
echo
printf '%-6s %10s %10s %10s %10s\n' depth backprop dni cdni nobp
for depth in 3 4 5 6; do
    printf '%-6s' "$depth"
    for col in backprop dni cdni nobp; do
        errs=$(for seed in $(seq 1 "$SEEDS"); do
            sed -n 's/.* accuracy:\([0-9.]*\)%.*/\1/p' "$OUT/d${depth}_${col}_s${seed}.out" | tail -1 |
                awk '{ printf "%.2f\n", 100 - $1 }'
        done | sort -n)
        med=$(echo "$errs" | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2); else print "-" }')
        printf ' %9s%%' "$med"
    done
    echo
done
