#!/bin/bash
# End to end: SG targets past later SG modules (target = true and target = mix, docs/semantics.md
# "Targets") against tests/ref/sgtarget_ref.py, an independent float64 numpy reference: one step
# to 1e-12 relative (the true gradient at h1 goes through two later stages), 100 steps to 1e-9.
# Then: lambda = 1 gives target = true's weights bit for bit and lambda = 0 target = bootstrap's,
# and a pipeline (lag 1, 2 and 3 threads) gives the sequential schedule's weights bit for bit.
. "${top_srcdir:-.}/tests/lib.sh"
DNIC=$(cd "$(dirname "$DNIC")" && pwd)/$(basename "$DNIC")
REF=$(cd "$top_srcdir/tests/ref" && pwd)/sgtarget_ref.py
COMPARE=$(cd "$top_srcdir/tests/ref" && pwd)/compare_ref.py
cd "$TMP" || exit 1

model() { # T1 T2 T3 [STEPS [LAG [DTYPE]]]: sg hk's setting "target = ..." (lambda for mix)
    cat <<DNI
model sgtarget
data csv { train = "chain.csv"  label = "y"  inputs = 6  labels = 1 }
layer h1 = dense(input, 5) { activation = sigmoid  init = randn * 0.3  bias_init = randn * 0.1 }
sg h1 { $1  init = randn * 0.1  bias_init = randn * 0.1 }
layer h2 = dense(h1, 5) { activation = sigmoid  init = randn * 0.3  bias_init = randn * 0.1 }
sg h2 { $2  init = randn * 0.1  bias_init = randn * 0.1 }
layer h3 = dense(h2, 5) { activation = sigmoid  init = randn * 0.3  bias_init = randn * 0.1 }
sg h3 { $3  init = randn * 0.1  bias_init = randn * 0.1 }
layer out = dense(h3, 1) { activation = sigmoid  init = randn * 0.3  bias_init = randn * 0.1 }
loss squared_error(out, labels) { report = loss  report_per = sum }
train { batch = 4  lr = 0.1  steps = ${4:-100}  report_every = 1  seed = 5  dtype = ${6:-float64}  lag = ${5:-0} }
DNI
}
t() { # a target's setting from the reference's word
    case $1 in bootstrap | true) echo "target = $1" ;; *) echo "target = mix  lambda = $1" ;; esac
}

if ! /usr/bin/python3 -c 'import numpy' 2> /dev/null; then
    tap_n=$((tap_n + 1))
    echo "ok $tap_n # SKIP python3-numpy is not installed (the README's setup command installs it)"
    finish
fi
/usr/bin/python3 -c '
import numpy as np
r = np.random.RandomState(11)
x = r.randn(24, 6)
y = (x[:, 0] + x[:, 3] * x[:, 5] > 0).astype(float)
print(",".join(["x%d" % i for i in range(6)] + ["y"]))
for i in range(24):
    print(",".join("%.17g" % v for v in x[i]) + ",%d" % y[i])' > chain.csv

model "$(t true)" "$(t 0.5)" "$(t bootstrap)" > m.dni
out=$("$DNIC" m.dni --dump-ir 2>&1)
if grep -q '^  h1.sg.true:h1.grad = matmul_nt h1.sg.true:h2.delta, h2.weight.used' <<< "$out" &&
    grep -q '^  h2.sg.target = mix h2.sg.true:h2.grad, h2.grad lambda=0.5' <<< "$out" &&
    grep -q '^  h3.weight.used = slice h3.weight' <<< "$out" &&
    grep -q '^block h1.sg_update stage=0 phase=sg_update waits=1,2,3 true_gradient=[0-9]* ops,[0-9.e+]* flops$' <<< "$out"; then
    ok "--dump-ir shows the true gradients' backward ops, the mix and the weights' copies"
else
    not_ok "--dump-ir shows the true gradients' backward ops, the mix and the weights' copies" "$out"
fi
out=$("$DNIC" m.dni 2>&1)
grep -q "^  true gradients: .* flops per step (h1.sg .*, h2.sg .*: the later layers' backward pass, updating nothing)" <<< "$out" &&
    ok "the summary gives the true gradients' cost" || not_ok "the summary gives the true gradients' cost" "$out"

if ! /usr/bin/python3 -c 'import numpy' 2> /dev/null; then
    tap_n=$((tap_n + 1))
    echo "ok $tap_n # SKIP python3-numpy is not installed (the README's setup command installs it)"
    finish
fi
# compare LOG WEIGHTS REF TOL: the losses and weights of a dnic run against the reference's
compare() { /usr/bin/python3 "$COMPARE" "$@"; }

for case in "true true true" "true bootstrap true" "0.5 0.5 bootstrap" "0.25 true 0.75" "bootstrap 0.9 true"; do
    set -- $case
    for steps in 1 100; do
        tol=1e-9; [ $steps = 1 ] && tol=1e-12
        model "$(t $1)" "$(t $2)" "$(t $3)" $steps > m.dni
        name="targets $1, $2, $3 ($steps step$([ $steps = 1 ] || echo s)): losses and weights equal the numpy reference to $tol"
        if ! out=$("$DNIC" m.dni --run --no-progress --log log.csv --save-weights w.st 2>&1); then
            not_ok "$name" "$out"; continue
        fi
        /usr/bin/python3 "$REF" chain.csv 5 4 0.1 5 $steps $1 $2 $3 > ref.txt
        if res=$(compare log.csv w.st ref.txt $tol 2>&1); then ok "$name # $res"; else not_ok "$name" "$res"; fi
    done
done

# A graph: the true gradient at a goes back through b (batch-normalised, with an SG module), c
# (with one) and a skip connection r = add(c, a) merged with b in j = concat(r, b).  With zero SG
# modules nothing before the loss learns in step 0, so the true targets are backpropagation's
# gradients at the initial weights; a module's bias after that step is lr * mean(target) and a
# linear layer's bias after one backprop step -lr * mean(gradient): equal up to the sign, bit
# for bit, at a and at c.
cat > g.dni <<'DNI'
model graph_true
data binary_addition { bits = 4  examples = 16  inputs = 8  labels = 4 }
layer a   = dense(input, 8) { activation = linear }
layer b   = dense(a, 8)     { activation = relu  norm = batch }
layer c   = dense(b, 8)     { activation = linear }
layer r   = add(c, a)       { activation = relu }
layer j   = concat(r, b)
layer out = dense(j, 4)     { activation = sigmoid }
sg a { target = true }
sg b { target = true }
sg c { target = true }
loss sigmoid_cross_entropy(out, labels)
train { batch = 8  lr = 0.1  steps = 1  seed = 4  dtype = float64 }
DNI
"$DNIC" g.dni --run --no-progress --save-weights dni.st > g.out 2>&1 &&
    "$DNIC" g.dni --run --no-progress --set train.mode=backprop --save-weights bp.st >> g.out 2>&1
res=$(/usr/bin/python3 - <<'PY'
import json, struct, sys
import numpy as np
def load(p):
    raw = open(p, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    return {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], dtype="<f8")
            for k, v in h.items() if k != "__metadata__"}
d, b = load("dni.st"), load("bp.st")
good = all(np.array_equal(d[k + ".sg.bias"], -b[k + ".bias"]) and np.any(b[k + ".bias"] != 0) for k in ("a", "c"))
print("a.sg.bias = -a.bias and c.sg.bias = -c.bias" if good else "differ: %r %r" % (d["a.sg.bias"], -b["a.bias"]))
sys.exit(0 if good else 1)
PY
) && ok "a graph (batch norm, add, concat, SG modules on the way): target = true is backprop's gradient, bit for bit # $res" ||
    not_ok "a graph (batch norm, add, concat, SG modules on the way): target = true is backprop's gradient, bit for bit" "$res" "$(cat g.out)"

# lambda = 1 is target = true and lambda = 0 target = bootstrap, bit for bit (float32 too)
for dtype in float64 float32; do
    run() { model "$1" "$2" "$(t bootstrap)" 100 0 $dtype > m.dni && "$DNIC" m.dni --run --no-progress --save-weights "$3" > /dev/null 2>&1; }
    run "$(t 1)" "$(t 0)" mix.st && run "$(t true)" "$(t bootstrap)" plain.st
    cmp -s mix.st plain.st && ok "$dtype: target = mix with lambda 1 and 0 gives target = true's and bootstrap's weights bit for bit" ||
        not_ok "$dtype: target = mix with lambda 1 and 0 gives target = true's and bootstrap's weights bit for bit"
    run "$(t 0.5)" "$(t 0)" half.st
    cmp -s half.st plain.st && not_ok "$dtype: lambda = 0.5 changes the weights" || ok "$dtype: lambda = 0.5 changes the weights"
done

# a pipeline computes what the sequential schedule computes: lag 1, on 2 and 3 threads
model "$(t 0.5)" "$(t true)" "$(t bootstrap)" 100 1 > m.dni
"$DNIC" m.dni --run --no-progress --schedule sequential --save-weights seq.st > seq.out 2>&1
for th in 2 3; do
    "$DNIC" m.dni --run --no-progress --schedule pipeline --threads $th --save-weights pipe.st > pipe.out 2>&1
    cmp -s seq.st pipe.st && cmp -s <(grep '^Iter' seq.out) <(grep '^Iter' pipe.out) &&
        ok "lag 1, pipeline on $th threads: the sequential schedule's weights and report lines, bit for bit" ||
        not_ok "lag 1, pipeline on $th threads: the sequential schedule's weights and report lines, bit for bit" "$(cat pipe.out)"
done
finish
