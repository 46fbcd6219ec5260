#!/bin/bash
# The paper's copy-task experiment (docs/results.md, "Copy"): for each truncation length T and
# each of truncated BPTT and DNI (sg h.state: linear, zero-initialised, its output scaled by 0.1,
# as the paper describes), the longest sequence length L learnt within a budget of training
# steps, under the paper's curriculum: L starts small and grows by 1 whenever the model makes
# under 0.15 wrong bits per sequence.  dnic compiles a whole sequence, so the curriculum is a
# chain of runs: ROUND steps at a time, each starting from the last one's weights
# (--load-weights; the optimiser's moments start afresh) on fresh sequences, scored on 1000
# others by bench/copy_eval.py's own numpy forward pass.  L starts at 1 for both methods; while
# a sequence's 2L+1 steps fit in one chunk of T there is no boundary and DNI is BPTT (those
# rounds run without the module, whose zero weights join the file when the first boundary
# comes: bench/copy_eval.py --add-sg).
# Usage: [REPEATS=R] bench/copy.sh [DNIC] [UNROLLS] [HIDDEN] [BUDGET] [ROUND] [MAXLEN] [OUTDIR]
#   e.g. bench/copy.sh ./dnic "2 3 4 5 8" 64 30000 500 60 copy-out
#   REPEATS=R: Repeat Copy with R repeats (the end marker's bit counts too), else Copy
set -u
DNIC=${1:-./dnic}
UNROLLS=${2:-2 3 4 5 8}
H=${3:-64}
BUDGET=${4:-30000}
ROUND=${5:-500}
MAXLEN=${6:-60}
OUT=${7:-copy-out}
R=${REPEATS:-0}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"

model() { # MODE L T
    local S=$((2 * $2 + 1)) O=$2 W=8 data="copy {" mode=$1 sg="sg h.state { init = zeros  scale = 0.1 }"
    if [ "$R" -gt 0 ]; then S=$(($2 + 1 + R * $2 + 1)) O=$((R * $2 + 1)) W=9 data="repeat_copy { repeats = $R "; fi
    if [ "$3" -ge "$S" ]; then mode=backprop sg=""; fi # one chunk: no boundary
    cat <<DNI
model copy_$mode
data $data bits = 8  length = $2  examples = $((ROUND * 32)) }
layer h   = lstm(input, $H) { steps = $S  outputs = $O }
layer out = dense(h, $W)     { steps = $O  activation = sigmoid }
$sg
loss sigmoid_cross_entropy(out, labels)
train { mode = $mode  unroll = $3  batch = 32  optimizer = adam  lr = 0.003  grad = mean  steps = $ROUND  report_every = $ROUND }
DNI
}

printf '%-4s %-5s %-8s %s\n' T mode longest "L reached after each round of $ROUND steps (wrong bits per sequence)"
for T in $UNROLLS; do
    for mode in backprop dni; do
        L=1 best=0 used=0 prev="" trail="" round=0
        while [ "$used" -lt "$BUDGET" ] && [ "$L" -le "$MAXLEN" ]; do
            round=$((round + 1))
            f="$OUT/T${T}_${mode}_r$round"
            model "$mode" "$L" "$T" > "$f.dni"
            if [ -n "$prev" ] && grep -q '^model copy_dni' "$f.dni" && grep -q '^sg h.state' "$f.dni"; then # its zeros, once
                /usr/bin/python3 "$HERE/copy_eval.py" --add-sg "$prev" "$H" "$prev.sg" && prev=$prev.sg
            fi
            # shellcheck disable=SC2086
            if ! "$DNIC" "$f.dni" --run --no-progress --set data.seed="$round" ${prev:+--load-weights "$prev"} \
                --save-weights "$f.st" > "$f.out" 2>&1; then
                trail="$trail L$L:failed"
                break
            fi
            used=$((used + ROUND))
            prev=$f.st
            b=$(/usr/bin/python3 "$HERE/copy_eval.py" "$f.st" 8 "$L" 1000 12345 "$R" | awk '{print $2}')
            trail="$trail L$L:$b"
            if awk -v b="$b" 'BEGIN { exit !(b < 0.15) }'; then best=$L; L=$((L + 1)); fi
        done
        printf '%-4s %-5s %-8s %s\n' "$T" "$([ "$mode" = backprop ] && echo BPTT || echo DNI)" "$best" "$trail"
    done
done
