#!/bin/bash
# End to end: the pipelined scheduler computes exactly what the sequential one computes for the
# same lag, run after run; lag 0 is the seeds' order; backprop falls back to sequential; an
# error in one stage stops every stage (no hang).
. "${top_srcdir:-.}/tests/lib.sh"
cd "$top_srcdir" || exit 1
M4=tests/e2e/models/four_stages.dni
run() { timeout 120 "$DNIC" "$@" --run --no-progress; }

for lag in 0 1 3; do
    run $M4 --set train.lag=$lag --schedule sequential --save-weights "$TMP/s$lag.st" > "$TMP/s$lag.out" 2>&1
    for threads in 2 3 4; do
        run $M4 --set train.lag=$lag --schedule pipeline --threads $threads --save-weights "$TMP/p$lag-$threads.st" \
            > "$TMP/p$lag-$threads.out" 2>&1
        if cmp -s "$TMP/s$lag.st" "$TMP/p$lag-$threads.st" &&
            diff <(grep '^Iter' "$TMP/s$lag.out") <(grep '^Iter' "$TMP/p$lag-$threads.out") > /dev/null; then
            ok "lag $lag: pipeline on $threads threads = sequential, weights and reports"
        else
            not_ok "lag $lag: pipeline on $threads threads = sequential" "$(cat "$TMP/p$lag-$threads.out")"
        fi
    done
done
grep -q 'pipeline: 4 stages on 2 threads' "$TMP/p1-2.out" && ok "4 stages are placed on 2 threads" ||
    not_ok "4 stages are placed on 2 threads" "$(tail -1 "$TMP/p1-2.out")"
for i in 1 2 3; do
    run $M4 --set train.lag=1 --schedule pipeline --threads 2 --save-weights "$TMP/r$i.st" > /dev/null 2>&1
done
cmp -s "$TMP/r1.st" "$TMP/r2.st" && cmp -s "$TMP/r2.st" "$TMP/r3.st" && ok "three pipelined runs give identical weights" ||
    not_ok "three pipelined runs give identical weights"
cmp -s "$TMP/s0.st" "$TMP/s1.st" && not_ok "the lag changes the training" || ok "the lag changes the training"

# a graph (tests/e2e/models/graph_dni.dni): three stages, one of them with three SG modules,
# stages that wait for several others; the pipeline computes what the sequential run does
MG=tests/e2e/models/graph_dni.dni
for lag in 0 2; do
    run $MG --set train.lag=$lag --schedule sequential --save-weights "$TMP/gs$lag.st" > "$TMP/gs$lag.out" 2>&1
    for threads in 2 3; do
        run $MG --set train.lag=$lag --schedule pipeline --threads $threads --save-weights "$TMP/gp$lag-$threads.st" \
            > "$TMP/gp$lag-$threads.out" 2>&1
        if grep -q '^Iter' "$TMP/gs$lag.out" && cmp -s "$TMP/gs$lag.st" "$TMP/gp$lag-$threads.st" &&
            diff <(grep '^Iter' "$TMP/gs$lag.out") <(grep '^Iter' "$TMP/gp$lag-$threads.out") > /dev/null; then
            ok "graph, lag $lag: pipeline on $threads threads = sequential, weights and reports"
        else
            not_ok "graph, lag $lag: pipeline on $threads threads = sequential" "$(cat "$TMP/gs$lag.out" "$TMP/gp$lag-$threads.out")"
        fi
    done
done
grep -q 'pipeline: 3 stages on 3 threads' "$TMP/gp0-3.out" && ok "the graph's 3 stages run on 3 threads" ||
    not_ok "the graph's 3 stages run on 3 threads" "$(tail -1 "$TMP/gp0-3.out")"

# lag 0 pipelined reproduces the seed notebook's first report line
run examples/seed_dni.dni --schedule pipeline --threads 2 --set train.epochs=1000 > "$TMP/seed.out" 2>&1
grep '^Iter' "$TMP/seed.out" | head -1 | grep -qx 'Iter:999 Loss:380.142015668 Synthetic Loss:1694.16764408' &&
    ok "lag 0 pipelined reproduces seed notebook 001" || not_ok "lag 0 pipelined reproduces seed notebook 001" "$(cat "$TMP/seed.out")"

# the planner keeps the tiny seed model sequential by default and says why when asked
run examples/seed_dni.dni --set train.epochs=1 > "$TMP/auto.out" 2>&1
grep -q 'sequential$' "$TMP/auto.out" && ok "auto keeps the seed model sequential" || not_ok "auto keeps the seed model sequential" "$(cat "$TMP/auto.out")"
run examples/seed_backprop.dni --schedule pipeline --set train.epochs=1 > "$TMP/bp.out" 2>&1
grep -q 'note: backpropagation is locked (one stage): running sequentially' "$TMP/bp.out" &&
    ok "backprop asked to pipeline says why it runs sequentially" || not_ok "backprop asked to pipeline says why" "$(cat "$TMP/bp.out")"

# every summary line ends with the planner's reason; a pipeline at lag 0 warns that its stages
# take turns; "kernels on N threads" only when a product was split
LAG0='dnic: warning: train.lag = 0: in a pipeline each stage waits every step for the stages after it (its SG targets), so stages take turns instead of overlapping; train.lag = 1 lets them overlap (it changes the numbers)'
grep -qxF "$LAG0" "$TMP/seed.out" && ok "a pipeline at lag 0 warns that its stages take turns" ||
    not_ok "a pipeline at lag 0 warns" "$(cat "$TMP/seed.out")"
grep -q 'warning' "$TMP/p1-2.out" && not_ok "a pipeline at lag 1 does not warn" "$(cat "$TMP/p1-2.out")" ||
    ok "a pipeline at lag 1 does not warn"
run examples/seed_dni.dni --set train.epochs=1 --threads 2 > "$TMP/auto2.out" 2>&1
tail -1 "$TMP/auto2.out" | grep -q '); 3.9e+05 flops per step are too few to pay for hand-offs: sequential$' &&
    ! grep -q 'kernels on' "$TMP/auto2.out" &&
    ok "the seed model's summary gives the planner's reason and no kernel threads" ||
    not_ok "the seed model's summary gives the planner's reason" "$(tail -1 "$TMP/auto2.out")"
tail -1 "$TMP/bp.out" | grep -q '); backpropagation is locked (one stage): running sequentially$' &&
    ok "backprop's summary says why it runs sequentially" || not_ok "backprop's summary says why" "$(tail -1 "$TMP/bp.out")"
tail -1 "$TMP/s1.out" | grep -q '); as asked: sequential$' &&
    ok "--schedule sequential's summary says it was asked" || not_ok "--schedule sequential's summary" "$(tail -1 "$TMP/s1.out")"
run examples/wide_dni.dni --schedule sequential --threads 2 --set train.steps=2 > "$TMP/wide.out" 2>&1
tail -1 "$TMP/wide.out" | grep -q '; kernels on 2 threads; as asked: sequential$' &&
    ok "large products split over 2 kernel threads say so" || not_ok "kernels on 2 threads" "$(tail -1 "$TMP/wide.out")"

# an error in one stage stops all stages: exit 1 with the step, within the timeout
run $M4 --schedule pipeline --threads 4 --set train.lr=1000 --set layer.h1.activation=linear \
    --set layer.h2.activation=linear --set layer.h3.activation=linear --set layer.h4.activation=linear \
    --set layer.out.activation=linear > "$TMP/nan.out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q 'error: training diverged at step' "$TMP/nan.out" && ok "a diverging pipeline stops cleanly" ||
    not_ok "a diverging pipeline stops cleanly" "exit $rc" "$(cat "$TMP/nan.out")"
run $M4 --schedule sequential --set train.lr=1000 --set layer.h1.activation=linear \
    --set layer.h2.activation=linear --set layer.h3.activation=linear --set layer.h4.activation=linear \
    --set layer.out.activation=linear > "$TMP/nan2.out" 2>&1
# the step is a fact of the model; which buffer is found first depends on how far other
# stages had run when the pipeline stopped
step_of() { grep -o 'diverged at step [0-9]* (epoch [0-9]*)' "$1"; }
[ -n "$(step_of "$TMP/nan.out")" ] && [ "$(step_of "$TMP/nan.out")" = "$(step_of "$TMP/nan2.out")" ] &&
    ok "the pipeline reports the same diverging step as the sequential run" ||
    not_ok "the same diverging step" "$(grep diverged "$TMP/nan.out" "$TMP/nan2.out")"

# a synthetic gradient that blows up while the loss is still finite stops the run too
# (wide_dni with plain SGD at lr 0.001: its SG losses pass 1e40 by step 8)
for sched in sequential pipeline; do
    run examples/wide_dni.dni --schedule $sched --set train.optimizer=sgd --set train.lr=0.001 --set train.steps=20 \
        > "$TMP/sgnan.out" 2>&1
    rc=$?
    [ $rc -eq 1 ] && grep -q 'error: training diverged at step' "$TMP/sgnan.out" && ! grep -q 'nan' "$TMP/sgnan.out" &&
        ok "$sched: a diverging SG module stops the run before any NaN is reported" ||
        not_ok "$sched: a diverging SG module stops the run" "exit $rc" "$(cut -c1-200 "$TMP/sgnan.out")"
done

out=$("$DNIC" $M4 --run --threads 0 2>&1); rc=$?
[ $rc -eq 1 ] && printf '%s' "$out" | grep -q "error: --threads is a number from 1 to 64, not '0'" && ok "--threads 0 is refused" ||
    not_ok "--threads 0 is refused" "$out"
out=$("$DNIC" $M4 --run --schedule fast 2>&1); rc=$?
[ $rc -eq 1 ] && printf '%s' "$out" | grep -q "error: --schedule is auto, sequential, pipeline or mpi, not 'fast'" &&
    ok "an unknown schedule is refused" || not_ok "an unknown schedule is refused" "$out"
finish
