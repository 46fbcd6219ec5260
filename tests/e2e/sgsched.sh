#!/bin/bash
# End to end: the SG toolkit of docs/semantics.md against tests/ref/sg_ref.py, an independent
# float64 numpy reference of a three-stage DNI chain: SG output heads (scale, clip, sigmoid),
# stochastic updates (train.update_prob), warm-up (train.warmup) and synthetic inputs (sg z.input).  Every step's loss (--log)
# and every final parameter must agree to 1e-9 relative; the pipeline must equal the sequential
# schedule bit for bit.
. "${top_srcdir:-.}/tests/lib.sh"
DNIC=$(cd "$(dirname "$DNIC")" && pwd)/$(basename "$DNIC")
REF=$(cd "$top_srcdir/tests/ref" && pwd)/sg_ref.py
TOP=$(cd "$top_srcdir" && pwd)
PY=/usr/bin/python3
cd "$TMP" || exit 1

# 24 rows of 4 inputs in [-1, 1), y = [x0 + x1 x2 > 0]
$PY - <<'PY'
import numpy as np
rs = np.random.RandomState(11)
X = rs.rand(24, 4) * 2 - 1
y = ((X[:, 0] + X[:, 1] * X[:, 2]) > 0).astype(float)
with open("sg.csv", "w") as f:
    f.write("x0,x1,x2,x3,y\n")
    for r, v in zip(X, y):
        f.write(",".join("%.6f" % e for e in r) + ",%d\n" % v)
PY
cat > m.dni <<'DNI'
model sg_ref
data csv { train = "sg.csv"  label = "y"  inputs = 4  labels = 1 }
layer h = dense(input, 5)  { activation = tanh  init = randn * 0.3  bias_init = randn * 0.1 }
layer z = dense(h, 1)      { activation = linear  init = randn * 0.3  bias_init = randn * 0.1 }
layer out = dense(z, 1)    { activation = sigmoid  init = randn * 0.3  bias_init = randn * 0.1 }
sg h { input = output + labels  init = randn * 0.1  bias_init = randn * 0.1 }
sg z { input = output + labels  init = randn * 0.1  bias_init = randn * 0.1 }
loss sigmoid_cross_entropy(out, labels) { report = loss  report_per = sum }
train { batch = 4  lr = 0.05  steps = 60  report_every = 1  seed = 3  dtype = float64 }
DNI

# compare LOG WEIGHTS REF: the losses and weights of a dnic run against the reference's
compare() { $PY "$TOP/tests/ref/compare_ref.py" "$@"; }

# tensor WEIGHTS NAME: a float64 tensor's values, one per line
tensor() {
    $PY - "$@" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
t = json.loads(raw[8:8 + n])[sys.argv[2]]
a, b = t["data_offsets"]
for i in range(a, b, 8):
    print(repr(struct.unpack("<d", raw[8 + n + i:16 + n + i])[0]))
PY
}

# against REF with SCALE_H CLIP_H HEAD_Z SCALE_Z CLIP_Z P WARMUP, and extra dnic flags
against() {
    local name=$1 sh=$2 ch=$3 hz=$4 sz=$5 cz=$6 p=$7 w=$8 si=${SI_REF:-}
    shift 8
    local set=(--set sg.h.scale=$sh --set sg.z.head=$hz --set sg.z.scale=$sz)
    [ "$ch" != 0 ] && set+=(--set sg.h.clip=$ch)
    [ "$cz" != 0 ] && set+=(--set sg.z.clip=$cz)
    if ! out=$("$DNIC" m.dni --run --no-progress --log log.csv --save-weights w.st "${set[@]}" "$@" 2>&1); then
        not_ok "$name" "$out"; return
    fi
    $PY "$REF" sg.csv 60 "$sh" "$ch" "$hz" "$sz" "$cz" "$p" "$w" $si > ref.txt
    if res=$(compare log.csv w.st ref.txt 2>&1); then ok "$name # $res"; else not_ok "$name" "$res"; fi
}

# pipe_eq NAME FLAGS...: with lag 1, the pipeline on 3 threads gives the sequential run's
# report lines and weights, bit for bit
pipe_eq() {
    local name=$1
    shift
    "$DNIC" m.dni --run --no-progress --set train.lag=1 --schedule sequential --save-weights s.st "$@" > s.out 2>&1
    "$DNIC" m.dni --run --no-progress --set train.lag=1 --schedule pipeline --threads 3 --save-weights p.st "$@" > p.out 2>&1
    if grep -q '^Iter' s.out && cmp -s s.st p.st && diff <(grep '^Iter' s.out) <(grep '^Iter' p.out) > /dev/null &&
        grep -q 'pipeline: 3 stages on 3 threads' p.out; then
        ok "$name: the pipeline on 3 threads = sequential, weights and reports"
    else
        not_ok "$name: the pipeline = sequential" "$(tail -3 s.out p.out)"
    fi
}

# ---- SG output heads ----------------------------------------------------------------------
against "heads: none (scale 1, linear): 60 steps equal the numpy reference" 1 0 linear 1 0 1 0
against "heads: scale 0.1 on h, 0.5 on z: equal to the numpy reference" 0.1 0 linear 0.5 0 1 0
against "heads: clip 0.05 on h, a sigmoid head on z: equal to the numpy reference" 1 0.05 sigmoid 1 0 1 0
against "heads: scale and clip on both, a sigmoid head on z: equal to the numpy reference" 0.3 0.02 sigmoid 2 0.1 1 0

# by hand: after one step, h's change with scale 0.1 is 0.1 times its change with scale 1 (the
# layer's update is linear in its gradient with SGD; h's start from a run where it is frozen)
one() { "$DNIC" m.dni --run --no-progress --set train.steps=1 --save-weights "$1" "${@:2}" > /dev/null 2>&1; }
one w0.st --set layer.h.trainable=false && one w1.st && one w01.st --set sg.h.scale=0.1
paste <(tensor w0.st h.weight) <(tensor w1.st h.weight) <(tensor w01.st h.weight) > hw.txt
if [ -s hw.txt ] && awk '{ d1 = $2 - $1; d01 = $3 - $1; e = d01 - 0.1 * d1; if (e < 0) e = -e
        if (d1 == 0 || e > 1e-12 * (d1 < 0 ? -d1 : d1)) bad = 1 } END { exit bad }' hw.txt; then
    ok "scale 0.1: one step moves h's weights 0.1 times as far as scale 1 (to 1e-12)"
else
    not_ok "scale 0.1: one step moves h's weights 0.1 times as far" "$(cat hw.txt)"
fi
pipe_eq "heads" --set sg.h.scale=0.3 --set sg.h.clip=0.02 --set sg.z.head=sigmoid --set sg.z.clip=0.1

# ---- stochastic updates: train.update_prob ---------------------------------------------------
# the reference draws each step's mask from numpy's RandomState seeded as semantics.md says, so
# 60 steps' losses and weights agree only if every mask does
for p in 0.2 0.5; do
    against "update_prob $p: 60 steps equal the numpy reference (its own draw of the masks)" 1 0 linear 1 0 $p 0 \
        --set train.update_prob=$p
done
against "update_prob 0.3 with heads: equal to the numpy reference" 0.3 0.02 sigmoid 2 0.1 0.3 0 --set train.update_prob=0.3
# p = 1 is the plain run, bit for bit; p = 0 leaves every layer (and its Adam state) as it starts
"$DNIC" m.dni --run --no-progress --save-weights plain.st > plain.out 2>&1
"$DNIC" m.dni --run --no-progress --save-weights p1.st --set train.update_prob=1 > p1.out 2>&1
cmp -s plain.st p1.st && diff <(grep '^Iter' plain.out) <(grep '^Iter' p1.out) > /dev/null && grep -q '^Iter' p1.out &&
    ok "update_prob 1 = no update_prob, bit for bit (weights and report lines)" ||
    not_ok "update_prob 1 = no update_prob, bit for bit" "$(tail -2 plain.out p1.out)"
adam=(--set train.optimizer=adam --set train.lr=0.01)
"$DNIC" m.dni --run --no-progress --set train.steps=1 "${adam[@]}" --set layer.h.trainable=false \
    --set layer.z.trainable=false --set layer.out.trainable=false --save-weights init.st > /dev/null 2>&1
"$DNIC" m.dni --run --no-progress "${adam[@]}" --set train.update_prob=0 --save-weights p0.st --checkpoint p0.ck \
    > p0.out 2>&1
same=0
for t in h.weight h.bias z.weight z.bias out.weight out.bias; do
    [ -n "$(tensor init.st $t)" ] && [ "$(tensor init.st $t)" = "$(tensor p0.st $t)" ] && same=$((same + 1))
done
[ $same = 6 ] && ok "update_prob 0: after 60 steps every layer's parameters are the initial ones" ||
    not_ok "update_prob 0: the layers are unchanged ($same of 6 equal)" "$(cat p0.out)"
[ "$(tensor p0.ck h.weight.adam_t)$(tensor p0.ck out.bias.adam_t)" = "0.00.0" ] &&
    [ "$(tensor p0.ck h.sg.weight.adam_t)" != 0.0 ] &&
    ok "update_prob 0: the layers' Adam state is untouched, the SG modules' is not" ||
    not_ok "update_prob 0: Adam state" "$(tensor p0.ck h.weight.adam_t) $(tensor p0.ck h.sg.weight.adam_t)"
[ "$(tensor p0.st h.sg.weight)" != "$(tensor init.st h.sg.weight)" ] && ok "update_prob 0: the SG modules still learn" ||
    not_ok "update_prob 0: the SG modules still learn"
pipe_eq "update_prob 0.2" --set train.update_prob=0.2
pipe_eq "update_prob 0.5, Adam, heads" --set train.update_prob=0.5 "${adam[@]}" --set sg.z.head=sigmoid --set sg.h.clip=0.02

# ---- warm-up: train.warmup -------------------------------------------------------------------
against "warmup 10: 60 steps equal the numpy reference (10 by backpropagation, then synthetic)" 1 0 linear 1 0 1 10 \
    --set train.warmup=10
against "warmup 60 (the whole run): equal to the numpy reference" 1 0 linear 1 0 1 60 --set train.warmup=60
against "warmup 20 with update_prob 0.3 and heads: equal to the numpy reference" 0.3 0.02 sigmoid 1 0 0.3 20 \
    --set train.warmup=20 --set train.update_prob=0.3
"$DNIC" m.dni --run --no-progress --set train.warmup=10 --set train.report_every=4 > w.out 2>&1
SWITCH='# warm-up over: steps 1 to 10 learnt by backpropagation, the layers learn from synthetic gradients from step 11 on'
[ "$(grep -c '^# warm-up over' w.out)" = 1 ] && grep -A1 -xF "$SWITCH" w.out | tail -1 | grep -q '^Iter:11 ' &&
    grep -q '^Iter:7 ' w.out && ok "warmup: one line says when the layers switch, before the report of that period" ||
    not_ok "warmup: the switch's line" "$(cat w.out)"
tail -1 w.out | grep -q '^# sg_ref: 60 steps (the first 10 by backpropagation: warm-up) in ' &&
    ok "warmup: the summary counts the warm-up steps" || not_ok "warmup: the summary" "$(tail -1 w.out)"
pipe_eq "warmup 10" --set train.warmup=10
pipe_eq "warmup 7, lag 2, update_prob 0.5" --set train.warmup=7 --set train.lag=2 --set train.update_prob=0.5
# interrupted inside the warm-up and after it, then resumed: the uninterrupted run's weights
"$DNIC" m.dni --run --no-progress --set train.warmup=10 --set train.lag=1 --save-weights whole.st > /dev/null 2>&1
for at in 6 15; do
    DNIC_TEST_INTERRUPT_AT=$at "$DNIC" m.dni --run --no-progress --set train.warmup=10 --set train.lag=1 \
        --checkpoint c$at.ck > /dev/null 2>&1
    "$DNIC" --resume c$at.ck --run --no-progress --save-weights r$at.st > r$at.out 2>&1
    grep -q "resumed after step $at" r$at.out && cmp -s whole.st r$at.st && ok "warmup: stopped after step $at and resumed, the uninterrupted run's weights" ||
        not_ok "warmup: resumed after step $at" "$(cat r$at.out)"
done

# ---- synthetic inputs: sg z.input ------------------------------------------------------------
SI=(--set 'sg.z.input.init=randn * 0.1' --set 'sg.z.input.bias_init=randn * 0.1')
SI_REF=si against "sg z.input: 60 steps equal the numpy reference" 1 0 linear 1 0 1 0 "${SI[@]}"
SI_REF=si against "sg z.input with update_prob 0.4 and heads: equal to the numpy reference" 0.5 0 sigmoid 1 0 0.4 0 \
    "${SI[@]}" --set train.update_prob=0.4 --set sg.z.head=sigmoid --set sg.h.scale=0.5
"$DNIC" m.dni --dump-ir "${SI[@]}" > si.ir 2>&1
# z's step reads nothing of h's step: it waits for no stage, the module's learning waits for h's
if sed -n '/^block z.step /,/^block /p' si.ir | grep -q '^  import' || ! grep -q '^block z.step stage=1 phase=step$' si.ir ||
    ! grep -q '^block z.input.sg_update stage=1 phase=sg_update waits=0$' si.ir; then
    not_ok "sg z.input: z's stage imports nothing from h's" "$(grep '^block' si.ir)"
else
    ok "sg z.input: z's step waits for no stage; the module's learning waits for h's step"
fi
for lag in 0 1 2; do
    pipe_eq "sg z.input, lag $lag" "${SI[@]}" --set train.lag=$lag
done
pipe_eq "sg z.input as an mlp, update_prob 0.5, Adam" "${SI[@]}" --set sg.z.input.form=mlp --set 'sg.z.input.hidden=[6]' \
    --set train.update_prob=0.5 "${adam[@]}"
for i in 1 2 3; do
    "$DNIC" m.dni --run --no-progress "${SI[@]}" --set train.lag=1 --schedule pipeline --threads 3 --save-weights si$i.st \
        > /dev/null 2>&1
done
cmp -s si1.st si2.st && cmp -s si2.st si3.st && ok "sg z.input: three pipelined runs give identical weights" ||
    not_ok "sg z.input: three pipelined runs give identical weights"

# a graph with add layers and batch normalisation in 4 stages (examples/residual_dni.dni; its SG
# modules start at zero and draw nothing): a run that is all warm-up trains every layer exactly
# as mode = backprop does, bit for bit, and prints the same losses
RES=$TOP/examples/residual_dni.dni
if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    L=(--set data.limit=1200 --set data.test_limit=200 --set train.epochs=2)
    ("$DNIC" "$RES" --run --no-progress "${L[@]}" --set train.warmup=100000 --save-weights "$TMP/wa.st" \
        > "$TMP/wa.out" 2>&1 && "$DNIC" "$RES" --run --no-progress "${L[@]}" --set train.mode=backprop \
        --save-weights "$TMP/wb.st" > "$TMP/wb.out" 2>&1)
    same=$($PY - <<'PY'
import json, struct
def load(p):
    raw = open(p, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    return {k: raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}
a, b = load("wa.st"), load("wb.st")
print("%d %d" % (len(b), sum(a.get(k) == v for k, v in b.items())))
PY
)
    if [ "${same% *}" -gt 20 ] && [ "${same% *}" = "${same#* }" ] &&
        diff <(grep '^Iter' wa.out | sed 's/ Synthetic Loss:[^]]*]//') <(grep '^Iter' wb.out) > /dev/null; then
        ok "residual graph, all warm-up = mode backprop: ${same#* } parameters bit for bit, and the report lines"
    else
        not_ok "residual graph, all warm-up = mode backprop" "$same" "$(cat wa.out wb.out)"
    fi
else
    ok "residual graph, all warm-up = mode backprop # SKIP dataset-fashion-mnist is not installed"
fi

# over MPI ranks (when Open MPI is there): update_prob is the sequential run's, warmup refused
if command -v mpirun > /dev/null && "$DNIC" --help 2>&1 | grep -q 'schedule.*mpi'; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
    export OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
    "$DNIC" m.dni --run --no-progress --set train.update_prob=0.3 --save-weights seq.st > /dev/null 2>&1
    timeout -s KILL 60 mpirun -np 3 "$DNIC" m.dni --run --no-progress --set train.update_prob=0.3 --save-weights mpi.st \
        > mpi.out 2>&1
    cmp -s seq.st mpi.st && ok "update_prob 0.3 on 3 MPI ranks = sequential, bit for bit" ||
        not_ok "update_prob 0.3 on 3 MPI ranks = sequential" "$(tail -5 mpi.out)"
    timeout -s KILL 60 mpirun -np 3 "$DNIC" m.dni --run --no-progress "${SI[@]}" > mpis.out 2>&1
    grep -q '^dnic: error: a synthetic input (sg NAME.input) lets a stage run before the one it reads' mpis.out &&
        ! grep -q '^Iter' mpis.out && ok "a synthetic input over MPI ranks is refused, with the reason" ||
        not_ok "a synthetic input over MPI ranks is refused" "$(head -5 mpis.out)"
    timeout -s KILL 60 mpirun -np 3 "$DNIC" m.dni --run --no-progress --set train.warmup=5 > mpiw.out 2>&1
    grep -q '^dnic: error: train.warmup backpropagates through every stage in one process' mpiw.out &&
        ! grep -q '^Iter' mpiw.out && ok "warmup over MPI ranks is refused, with the reason" ||
        not_ok "warmup over MPI ranks is refused" "$(head -5 mpiw.out)"
fi

finish
