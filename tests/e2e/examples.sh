#!/bin/bash
# End to end: every example checks; short runs of the seed examples train in the direction
# the seeds report; the command line rejects bad flags and overrides with a non-zero exit.
. "${top_srcdir:-.}/tests/lib.sh"
cd "$top_srcdir" || exit 1

for f in examples/*.dni; do
    check "$f --check" "$DNIC" "$f" --check
done

# last_loss FILE: the Loss of the last report line
last_loss() { grep '^Iter:' "$1" | tail -1 | sed 's/^Iter:[0-9]* Loss:\([^ ]*\).*/\1/'; }
first_loss() { grep '^Iter:' "$1" | head -1 | sed 's/^Iter:[0-9]* Loss:\([^ ]*\).*/\1/'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# Backprop on 12-bit addition: notebook 002 reaches 898.9 after 100 epochs and 236.2 after 200;
# a faithful run must be well below 400 by epoch 200 (the untrained loss is about 1400).
"$DNIC" examples/seed_backprop_12bit.dni --run --no-progress --set train.epochs=200 > "$TMP/b12.out" 2>&1
l=$(last_loss "$TMP/b12.out")
if [ -n "$l" ] && lt "$l" 400; then ok "seed_backprop_12bit: loss $l < 400 after 200 epochs"
else not_ok "seed_backprop_12bit: loss below 400 after 200 epochs" "$(cat "$TMP/b12.out")"; fi

# DNI, SG input = output vs labels, 2000 epochs each: both fall, labels fall faster (the blog).
"$DNIC" examples/seed_dni.dni --run --no-progress --set train.epochs=2000 --set train.report_every=100 > "$TMP/o.out" 2>&1
"$DNIC" examples/seed_dni_labels.dni --run --no-progress --set train.epochs=2000 --set train.report_every=100 > "$TMP/l.out" 2>&1
o0=$(first_loss "$TMP/o.out"); o1=$(last_loss "$TMP/o.out")
l0=$(first_loss "$TMP/l.out"); l1=$(last_loss "$TMP/l.out")
if [ -n "$o1" ] && lt "$o1" "$o0"; then ok "seed_dni (SG sees output): loss falls $o0 -> $o1"
else not_ok "seed_dni (SG sees output): loss falls" "$(cat "$TMP/o.out")"; fi
if [ -n "$l1" ] && lt "$l1" "$l0"; then ok "seed_dni_labels (SG sees labels): loss falls $l0 -> $l1"
else not_ok "seed_dni_labels (SG sees labels): loss falls" "$(cat "$TMP/l.out")"; fi
if [ -n "$l1" ] && [ -n "$o1" ] && lt "$l1" "$o1"; then ok "labels train faster than output: $l1 < $o1 after 2000 epochs"
else not_ok "labels train faster than output" "labels $l1, output $o1"; fi

# The same variant through an override gives the same numbers as the edited file.
"$DNIC" examples/seed_dni.dni --run --no-progress --set train.epochs=2000 --set train.report_every=100 \
    --set sg.h1.input=labels --set sg.h2.input=labels > "$TMP/s.out" 2>&1
if diff <(grep '^Iter' "$TMP/l.out") <(grep '^Iter' "$TMP/s.out") > /dev/null 2>&1; then ok "--set sg.NAME.input=labels equals the labels file"
else not_ok "--set sg.NAME.input=labels equals the labels file" "$(diff "$TMP/l.out" "$TMP/s.out")"; fi

# float32 trains too (not to the seed digits)
"$DNIC" examples/seed_dni.dni --run --no-progress --set train.dtype=float32 --set train.epochs=500 --set train.report_every=100 > "$TMP/f.out" 2>&1
l=$(last_loss "$TMP/f.out")
if [ -n "$l" ] && lt "$l" 500; then ok "float32 seed_dni trains (loss $l)"; else not_ok "float32 seed_dni trains" "$(cat "$TMP/f.out")"; fi

# Divergence stops with the step and the buffer named, exit 1.
"$DNIC" examples/seed_backprop.dni --run --no-progress --set train.lr=1000 --set train.epochs=5 --set layer.h1.activation=linear \
    --set layer.h2.activation=linear --set layer.out.activation=linear > "$TMP/nan.out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q 'error: training diverged at step 4 (epoch 0): h1.weight holds NaN or infinity' "$TMP/nan.out"; then
    ok "divergence is an error naming the step"
else not_ok "divergence is an error naming the step" "exit $rc" "$(cat "$TMP/nan.out")"; fi

# a validation split: held-out examples are scored at every report, and not trained on
"$DNIC" examples/seed_backprop.dni --run --no-progress --set train.epochs=2000 --set train.report_every=1000 \
    --set data.validation=0.2 > "$TMP/val.out" 2>&1
acc=$(sed -n 's/^Iter:1999 .* Validation loss:[^ ]* accuracy:\([0-9.]*\)%$/\1/p' "$TMP/val.out")
steps=$(sed -n 's/^# seed_backprop: \([0-9]*\) steps.*/\1/p' "$TMP/val.out")
if [ -n "$acc" ] && [ "$steps" = 16000 ]; then ok "data.validation = 0.2 holds out 20 examples and scores them ($acc% exact sums)"
else not_ok "data.validation holds out examples and scores them" "$(cat "$TMP/val.out")"; fi

# --vary: one run per value and a table; each row equals the run with that --set
"$DNIC" examples/seed_dni.dni --run --no-progress --set train.epochs=300 --set train.report_every=100 \
    --vary sg.h1.input=output,labels --plot "$TMP/v.svg" > "$TMP/vary.out" 2>&1
"$DNIC" examples/seed_dni.dni --run --no-progress --set train.epochs=300 --set train.report_every=100 \
    --set sg.h1.input=labels > "$TMP/one.out" 2>&1
want=$(grep '^Iter:299' "$TMP/one.out" | sed 's/^Iter:299 Loss:\([^ ]*\).*/\1/')
row=$(grep '^sg.h1.input=labels ' "$TMP/vary.out" | awk '{print $2}')
if [ -n "$want" ] && [ -n "$row" ] && awk -v a="$want" -v b="$row" 'BEGIN { d = a - b; exit !(d < 1e-6 && d > -1e-6) }' &&
    grep -q '^sg.h1.input=output ' "$TMP/vary.out" && [ -s "$TMP/v.svg" ]; then
    ok "--vary runs each variant, tabulates and plots them"
else not_ok "--vary runs each variant, tabulates and plots them" "$want vs $row" "$(cat "$TMP/vary.out")"; fi

# Command line.
check "--help exits 0" "$DNIC" --help
check "--version exits 0" "$DNIC" --version
expect_fail() { # NAME EXIT PATTERN ARGS...
    name=$1 want=$2 pat=$3; shift 3
    out=$("$DNIC" "$@" 2>&1); rc=$?
    if [ $rc -eq "$want" ] && printf '%s\n' "$out" | grep -q -- "$pat"; then ok "$name"
    else not_ok "$name" "exit $rc (want $want)" "$out"; fi
}
expect_fail "unknown option suggests" 1 "unknown option '--rnu' (did you mean '--run'?)" examples/seed_dni.dni --rnu
expect_fail "missing file" 1 "error: cannot open 'nope.dni': No such file or directory" nope.dni --check
expect_fail "no file" 1 "no model file given" --check
expect_fail "--set without a value" 1 "error: --set needs a value" examples/seed_dni.dni --set
printf 'model m\n\001\002' > "$TMP/binary.dni"
expect_fail "binary file" 1 "binary.dni:2:1: error: '.*binary.dni' is not a text file (byte 0x01)" "$TMP/binary.dni" --check
expect_fail "override error names the override" 1 "^--set:1:7: error: unknown setting 'epoch' in train" \
    examples/seed_dni.dni --set train.epoch=3
finish
