#!/bin/bash
# End to end: --probe.  What it measures equals tests/ref/sgtarget_ref.py's plain backpropagation
# in float64 (cosine, norm ratio and both synthetic losses, to 1e-12 relative); it changes no
# training number (weights bit for bit with and without it); a pipeline's probes are the
# sequential schedule's; the log and --plot carry them; models it cannot probe are refused.
. "${top_srcdir:-.}/tests/lib.sh"
DNIC=$(cd "$(dirname "$DNIC")" && pwd)/$(basename "$DNIC")
REF=$(cd "$top_srcdir/tests/ref" && pwd)/sgtarget_ref.py
cd "$TMP" || exit 1

model() { # T1 T2 T3 STEPS LAG: sg hk's "target = ..."
    cat <<DNI
model probe
data csv { train = "chain.csv"  label = "y"  inputs = 6  labels = 1 }
layer h1 = dense(input, 5) { activation = sigmoid  init = randn * 0.3  bias_init = randn * 0.1 }
sg h1 { $1  init = randn * 0.1  bias_init = randn * 0.1 }
layer h2 = dense(h1, 5) { activation = sigmoid  init = randn * 0.3  bias_init = randn * 0.1 }
sg h2 { $2  init = randn * 0.1  bias_init = randn * 0.1 }
layer h3 = dense(h2, 5) { activation = sigmoid  init = randn * 0.3  bias_init = randn * 0.1 }
sg h3 { $3  init = randn * 0.1  bias_init = randn * 0.1 }
layer out = dense(h3, 1) { activation = sigmoid  init = randn * 0.3  bias_init = randn * 0.1 }
loss squared_error(out, labels) { report = loss  report_per = sum }
train { batch = 4  lr = 0.1  steps = $4  report_every = 10  seed = 5  dtype = float64  lag = $5 }
DNI
}
# 24 rows of 6 inputs and a 0/1 label (a fixed formula: no numpy needed)
{
    echo x0,x1,x2,x3,x4,x5,y
    for i in $(seq 0 23); do
        awk -v i=$i 'BEGIN { s = 0; for (j = 0; j < 6; j++) { v = sin(i * 7.1 + j * 3.3) * 1.5; s += (j % 2 ? -v : v);
            printf "%.17g,", v } print (s > 0 ? 1 : 0) }'
    done
} > chain.csv

# refused: no SG module to probe, and a true gradient through an rnn
model "target = bootstrap" "target = bootstrap" "target = bootstrap" 20 0 > m.dni
out=$("$DNIC" m.dni --run --probe --set train.mode=backprop 2>&1); rc=$?
[ $rc = 1 ] && [ "$out" = "dnic: error: --probe compares SG modules with the true gradient, but model 'probe' has none in train.mode = backprop" ] &&
    ok "--probe in backprop mode: an error, exit 1" || not_ok "--probe in backprop mode: an error, exit 1" "exit $rc" "$out"
out=$("$DNIC" m.dni --probe 2>&1); rc=$?
[ $rc = 1 ] && [ "$(printf '%s\n' "$out" | head -1)" = "dnic: error: --probe works with --run" ] &&
    ok "--probe without --run: an error, exit 1" || not_ok "--probe without --run: an error, exit 1" "exit $rc" "$out"
cat > r.dni <<'DNI'
model r
data binary_addition { bits = 4 examples = 16 inputs = 8 labels = 4 }
layer a = dense(input, 8) { activation = tanh }
layer h = rnn(a, 6) { steps = 4 }
layer out = dense(h, 4) { activation = sigmoid }
sg a
loss squared_error(out, labels)
train { batch = 4  lr = 0.1  epochs = 1 }
DNI
out=$("$DNIC" r.dni --run --probe 2>&1); rc=$?
[ $rc = 1 ] && [ "$out" = "dnic: error: --probe: the true gradient would go through layer 'h', an rnn layer after an SG module; dnic backpropagates it only through dense, add and concat layers" ] &&
    ok "--probe past an rnn layer: an error, exit 1" || not_ok "--probe past an rnn layer: an error, exit 1" "exit $rc" "$out"

# --probe changes no number: weights and report lines (less the probes) as without it
for lag in 0 1; do
    model "target = mix  lambda = 0.5" "target = true" "target = bootstrap" 60 $lag > m.dni
    "$DNIC" m.dni --run --no-progress --save-weights plain.st > plain.out 2>&1
    "$DNIC" m.dni --run --no-progress --probe --save-weights probed.st --log probed.csv --plot probed.svg > probed.out 2>&1
    if cmp -s plain.st probed.st && cmp -s <(grep '^Iter' plain.out) <(grep '^Iter' probed.out | sed 's/ Probe:.*//') &&
        grep -q 'Probe:\[h1 cos=' probed.out; then
        ok "lag $lag: --probe gives the weights and report lines of a run without it, bit for bit"
    else
        not_ok "lag $lag: --probe gives the weights and report lines of a run without it, bit for bit" "$(cat probed.out)"
    fi
done
head -1 probed.csv | grep -q ',h1.probe_cos,h1.probe_norm,h1.probe_sg_boot,h1.probe_sg_true,h2.probe_cos,' &&
    grep -q 'data-column="\*.probe_cos"' probed.svg && grep -q 'probe: cosine of the synthetic and the true gradient' probed.svg &&
    ok "the log has the probes' columns and --plot draws their panels" ||
    not_ok "the log has the probes' columns and --plot draws their panels" "$(head -1 probed.csv)"
# a pipeline's probes are the sequential schedule's (lag 1, 2 and 3 threads), the elapsed time aside
"$DNIC" m.dni --run --no-progress --probe --schedule sequential --log seq.csv --save-weights seq.st > /dev/null 2>&1
for th in 2 3; do
    "$DNIC" m.dni --run --no-progress --probe --schedule pipeline --threads $th --log pipe.csv --save-weights pipe.st > pipe.out 2>&1
    cmp -s seq.st pipe.st && cmp -s <(cut -d, -f1-18 seq.csv) <(cut -d, -f1-18 pipe.csv) &&
        [ "$(head -1 seq.csv | cut -d, -f19-)" = elapsed_s ] &&
        ok "lag 1, pipeline on $th threads: the probes and weights of the sequential schedule, bit for bit" ||
        not_ok "lag 1, pipeline on $th threads: the probes and weights of the sequential schedule, bit for bit" "$(cat pipe.out)"
done
# A graph (batch norm, add, concat): after one step with zero SG modules and the output layer
# frozen, no weight the true gradients go through has moved, so each probe's synthetic loss
# against the true gradient is the one the module trained on in that step (target = true)
cat > g.dni <<'DNI'
model graph_true
data binary_addition { bits = 4  examples = 16  inputs = 8  labels = 4 }
layer a   = dense(input, 8) { activation = linear }
layer b   = dense(a, 8)     { activation = relu  norm = batch }
layer c   = dense(b, 8)     { activation = linear }
layer r   = add(c, a)       { activation = relu }
layer j   = concat(r, b)
layer out = dense(j, 4)     { activation = sigmoid  trainable = false  init = randn * 0.5 }
sg a { target = true }
sg b { target = true }
sg c { target = true }
loss sigmoid_cross_entropy(out, labels) { report_per = sum }
train { batch = 8  lr = 0.1  steps = 1  report_every = 1  seed = 4  dtype = float64 }
DNI
"$DNIC" g.dni --run --no-progress --probe --log g.csv > g.out 2>&1
res=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    { bad = 0; for (k = 0; k < 3; k++) { m = substr("abc", k + 1, 1); x = $col[m ".sg_loss"]; y = $col[m ".probe_sg_true"]
          d = x - y; if (d < 0) d = -d; if (!(x > 0) || d > 1e-12 * x) bad = 1; printf "%s %s %s; ", m, x, y } exit bad }' g.csv) &&
    ok "a graph: the probes' true gradients are those the step trained on # $res" ||
    not_ok "a graph: the probes' true gradients are those the step trained on" "$res" "$(cat g.out)"

# and so are those of stages on 3 MPI ranks (the true gradients' copies of weights cross them)
if "$DNIC" --version | grep -q MPI && command -v mpirun > /dev/null; then
    out=$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
        OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo \
        LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}exitcode=0" \
        timeout -s KILL 120 mpirun -np 3 "$DNIC" m.dni --run --no-progress --probe --log mpi.csv --save-weights mpi.st 2>&1)
    cmp -s seq.st mpi.st && cmp -s <(cut -d, -f1-18 seq.csv) <(cut -d, -f1-18 mpi.csv) &&
        ok "lag 1, 4 stages on 3 MPI ranks: the probes and weights of the sequential schedule, bit for bit" ||
        not_ok "lag 1, 4 stages on 3 MPI ranks: the probes and weights of the sequential schedule, bit for bit" "$out"
else
    tap_n=$((tap_n + 1))
    echo "ok $tap_n # SKIP dnic was built without MPI, or mpirun is missing"
fi

if ! /usr/bin/python3 -c 'import numpy' 2> /dev/null; then
    tap_n=$((tap_n + 1))
    echo "ok $tap_n # SKIP python3-numpy is not installed (the README's setup command installs it)"
    finish
fi
# the probes after the last step against the reference's plain backpropagation, to 1e-12
for case in "true true true" "0.5 true bootstrap" "bootstrap bootstrap bootstrap"; do
    set -- $case
    t() { case $1 in bootstrap | true) echo "target = $1" ;; *) echo "target = mix  lambda = $1" ;; esac; }
    model "$(t $1)" "$(t $2)" "$(t $3)" 30 0 > m.dni
    name="targets $1, $2, $3: the probes after 30 steps equal the numpy reference's to 1e-12"
    if ! out=$("$DNIC" m.dni --run --no-progress --probe --log log.csv 2>&1); then not_ok "$name" "$out"; continue; fi
    /usr/bin/python3 "$REF" chain.csv 5 4 0.1 5 30 $1 $2 $3 probe > ref.txt
    res=$(/usr/bin/python3 - log.csv ref.txt <<'PY'
import sys
head, *rows = [l.split(",") for l in open(sys.argv[1]).read().split("\n") if l]
last = dict(zip(head, rows[-1]))
worst, where = 0.0, ""
cols = ["probe_cos", "probe_norm", "probe_sg_boot", "probe_sg_true"]
n = 0
for l in open(sys.argv[2]):
    if l.startswith("probe "):
        f = l.split()
        for c, w in zip(cols, map(float, f[2:])):
            g = float(last["%s.%s" % (f[1], c)])
            e = abs(g - w) / max(abs(w), 1e-300)
            n += 1
            if e > worst: worst, where = e, "%s.%s: %r vs %r" % (f[1], c, g, w)
print("%d values, worst relative difference %.3g (%s)" % (n, worst, where))
sys.exit(0 if n == 12 and worst <= 1e-12 else 1)
PY
    ) && ok "$name # $res" || not_ok "$name" "$res"
done
finish
