#!/bin/bash
# End to end: an interrupted run (SIGINT/SIGTERM, or the test hook DNIC_TEST_INTERRUPT_AT) still
# writes --save-weights, --log and --plot as of its last completed step, says so, and exits 130;
# --save-best keeps the weights of the best validation loss and train.patience stops early; a
# resumed run's summary counts only its own steps.
. "${top_srcdir:-.}/tests/lib.sh"
cd "$top_srcdir" || exit 1
M=tests/e2e/models/four_stages.dni
BP="--set train.mode=backprop --set train.report_every=1"
run() { timeout 120 "$DNIC" $M --run --no-progress "$@"; }

# 72 steps are 9 epochs of 8: the interrupted run's files equal those of a 9-epoch run
DNIC_TEST_INTERRUPT_AT=72 run $BP --save-weights "$TMP/i.st" --log "$TMP/i.csv" --plot "$TMP/i.svg" > /dev/null 2> "$TMP/i.err"
rc=$?
cat > "$TMP/i.want" << END
dnic: interrupted after step 72
dnic: wrote the log to $TMP/i.csv
dnic: wrote the plot to $TMP/i.svg
dnic: wrote the weights after step 72 to $TMP/i.st
END
[ $rc -eq 130 ] && diff "$TMP/i.want" "$TMP/i.err" > /dev/null && [ -s "$TMP/i.svg" ] &&
    ok "an interrupt writes the weights, the log and the plot, says so and exits 130" ||
    not_ok "an interrupt writes the requested files" "exit $rc" "$(cat "$TMP/i.err")"
run $BP --set train.epochs=9 --save-weights "$TMP/f.st" --log "$TMP/f.csv" > /dev/null 2>&1
cmp -s "$TMP/i.st" "$TMP/f.st" && ok "the interrupted run's weights are those of a run of that many steps" ||
    not_ok "the interrupted run's weights are those of a run of that many steps"
diff <(cut -d, -f1-3 "$TMP/i.csv") <(cut -d, -f1-3 "$TMP/f.csv") > /dev/null &&
    ok "the interrupted run's log is that of a run of that many steps" ||
    not_ok "the interrupted run's log is that of a run of that many steps" "$(diff "$TMP/i.csv" "$TMP/f.csv")"
for sch in sequential pipeline; do
    rm -f "$TMP/p.st"
    DNIC_TEST_INTERRUPT_AT=77 run --schedule $sch --set train.lag=1 --save-weights "$TMP/p.st" > /dev/null 2> "$TMP/p.err"
    rc=$?
    [ $rc -eq 130 ] && grep -q "^dnic: wrote the weights after step [0-9]* to $TMP/p.st\$" "$TMP/p.err" && [ -s "$TMP/p.st" ] &&
        ok "$sch: an interrupted DNI run writes its weights" || not_ok "$sch: an interrupted DNI run writes its weights" "exit $rc" "$(cat "$TMP/p.err")"
done

# a real SIGINT writes the weights too (dnic itself in the background, not a wrapper)
"$DNIC" $M --run --no-progress --set train.epochs=200000 --save-weights "$TMP/s.st" > /dev/null 2> "$TMP/s.err" &
pid=$!
sleep 0.5
kill -INT $pid 2> /dev/null
wait $pid
rc=$?
[ $rc -eq 130 ] && grep -q "^dnic: wrote the weights after step" "$TMP/s.err" && [ -s "$TMP/s.st" ] &&
    ok "SIGINT without --checkpoint writes --save-weights" || not_ok "SIGINT writes --save-weights" "exit $rc" "$(cat "$TMP/s.err")"

# --save-best and train.patience: validation loss is best at epoch 3, then 4 reports without improvement
V="$BP --set data.validation=0.25 --set train.lr=0.3 --set train.epochs=100"
run $V --save-best "$TMP/b.st" --set train.patience=4 > "$TMP/b.out" 2>&1
rc=$?
grep -qx "dnic: the best weights (validation loss 0.722545 at epoch 3) are in $TMP/b.st" "$TMP/b.out" &&
    grep -qx "dnic: stopped early after step 48: no better validation loss in 4 reports (train.patience)" "$TMP/b.out" &&
    grep -q "^# four_stages: 48 steps in" "$TMP/b.out" && [ $rc -eq 0 ] &&
    ok "--save-best names the best epoch; train.patience stops early and says so" ||
    not_ok "--save-best and train.patience" "exit $rc" "$(cat "$TMP/b.out")"
run $V --set train.epochs=4 --save-weights "$TMP/b4.st" > /dev/null 2>&1
cmp -s "$TMP/b.st" "$TMP/b4.st" && ok "--save-best keeps the weights of the best epoch" ||
    not_ok "--save-best keeps the weights of the best epoch"
run $V --set train.keep_best="\"$TMP/k.st\"" --set train.patience=4 > /dev/null 2>&1
cmp -s "$TMP/b.st" "$TMP/k.st" && ok "train.keep_best keeps the same weights as --save-best" || not_ok "train.keep_best"
out=$(timeout 60 "$DNIC" $M --check --set train.patience=3 2>&1)
[ $? -eq 1 ] && printf '%s\n' "$out" | grep -qF -- "--set:1:7: error: train.patience needs a validation or test set to watch" &&
    ok "train.patience without a validation or test set is a located error" || not_ok "train.patience needs a set" "$out"

# the resumed run's summary counts the steps it ran (30 epochs of 8 steps, resumed after 12)
run --set train.epochs=12 --checkpoint "$TMP/c.st" > /dev/null 2>&1
run --set train.epochs=30 --resume "$TMP/c.st" > "$TMP/r.out" 2>&1
grep -q "^# four_stages: 144 steps (resumed after step 96) in " "$TMP/r.out" &&
    ok "a resumed run's summary counts only its own steps" || not_ok "a resumed run's summary counts its own steps" "$(cat "$TMP/r.out")"
finish
