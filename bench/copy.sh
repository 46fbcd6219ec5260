#!/bin/bash
# The paper's copy-task experiment (docs/results.md, "Copy"): for each truncation length T and
# each of truncated BPTT and DNI (sg h.state: linear, zero-initialised, its output scaled by 0.1,
# as the paper describes), the longest sequence length L learnt within a budget of training
# steps, under the paper's curriculum: L starts at 1 and grows by 1 whenever the model makes
# under 0.15 wrong bits per sequence.  One dnic run per T and method: the data's curriculum
# (docs/language.md 5.2) scores 1000 test sequences every ROUND steps and lengthens in the run,
# carrying the weights and Adam's moments over.  The final weights are scored again, at the
# length the run ended at, on 1000 other sequences by bench/copy_eval.py's own numpy forward
# pass: an independent check of dnic's score.  While a sequence's 2L+1 steps fit in one chunk
# of T there is no boundary and DNI is BPTT (its module is idle until the first boundary).
# Usage: [REPEATS=R] bench/copy.sh [DNIC] [UNROLLS] [HIDDEN] [BUDGET] [ROUND] [MAXLEN] [OUTDIR] [EXAMPLES]
#   e.g. bench/copy.sh ./dnic "2 3 4 5 8" 64 15000 500 60 copy-out 32000
#   REPEATS=R: Repeat Copy with R repeats (the end marker's bit counts too), else Copy
set -u
DNIC=${1:-./dnic}
UNROLLS=${2:-2 3 4 5 8}
H=${3:-64}
BUDGET=${4:-30000}
ROUND=${5:-500}
MAXLEN=${6:-60}
OUT=${7:-copy-out}
EXAMPLES=${8:-32000}
R=${REPEATS:-0}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"

model() { # MODE T
    local W=8 data="copy {" sg=""
    if [ "$R" -gt 0 ]; then W=9 data="repeat_copy { repeats = $R "; fi
    if [ "$1" = dni ]; then sg="sg h.state { init = zeros  scale = 0.1 }"; fi
    cat <<DNI
model copy_$1
data $data bits = 8  length = 1  examples = $EXAMPLES  test_examples = 1000  curriculum = 0.15  max_length = $MAXLEN }
layer h   = lstm(input, $H) { unroll = $2 }
layer out = dense(h, $W)     { activation = sigmoid }
$sg
loss sigmoid_cross_entropy(out, labels)
train { mode = $1  batch = 32  optimizer = adam  lr = 0.003  grad = mean  steps = $BUDGET  report_every = $ROUND }
DNI
}

printf '%-4s %-5s %-8s %-7s %-10s %s\n' T mode longest "last L" "dnic test" "copy_eval (wrong bits per sequence at the last L, 1000 fresh sequences)"
for T in $UNROLLS; do
    for mode in backprop dni; do
        f="$OUT/T${T}_$mode"
        model "$mode" "$T" > "$f.dni"
        if ! "$DNIC" "$f.dni" --run --no-progress --save-weights "$f.st" > "$f.out" 2>&1; then
            printf '%-4s %-5s failed: see %s\n' "$T" "$mode" "$f.out"
            continue
        fi
        best=$(sed -n 's/^# curriculum: longest length solved \([0-9]*\).*/\1/p' "$f.out")
        last=$(sed -n 's/.*; length \([0-9]*\) at the end.*/\1/p; s/^# curriculum: no length solved (length \([0-9]*\):.*/\1/p' "$f.out")
        score=$(grep '^Iter:' "$f.out" | tail -1 | sed 's/.* wrong bits://')
        b=$(/usr/bin/python3 "$HERE/copy_eval.py" "$f.st" 8 "$last" 1000 12345 "$R" | awk '{print $2}')
        printf '%-4s %-5s %-8s %-7s %-10s %s\n' "$T" "$([ "$mode" = backprop ] && echo BPTT || echo DNI)" "${best:-0}" \
            "$last" "$score" "$b"
    done
done
