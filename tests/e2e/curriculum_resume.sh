#!/bin/bash
# End to end: a curriculum run (data copy { curriculum  max_length }) checkpointed and resumed.
# The uninterrupted run is the reference: a threshold every report meets (100 wrong bits per
# sequence) lengthens at every report (1 -> 2 at step 10, 2 -> 3 at 20, 3 -> 4 at 30, length 4
# = max_length solved at 40, where the run ends), with Adam (state carried at each length) and
# lag 1 (SG updates pending at every checkpoint).  A run stopped at any step (the interrupt hook
# a signal sets, or the end of a shorter train.steps) and resumed must end with the same weights
# byte for byte (float64) and print the same lines after the resume: report lines, lengthening
# lines and the summary's longest length solved.  Step 15 checks that the data is read from its
# first example where the length began (step 10), not from step 0: 15 - 10 and 15 are different
# rows of the 20-step epoch.
. "${top_srcdir:-.}/tests/lib.sh"
DNIC=$(cd "$(dirname "$DNIC")" && pwd)/$(basename "$DNIC")
cd "$TMP" || exit 1

# $1: the data block's curriculum settings
model() {
    cat <<DNI
model cur
data copy { bits = 3  length = 1  examples = 160  test_examples = 40  $1 }
layer h   = lstm(input, 8)
layer out = dense(h, 3) { activation = sigmoid }
sg h.state { init = zeros  scale = 0.1 }
loss sigmoid_cross_entropy(out, labels)
train { mode = dni  unroll = 2  batch = 8  optimizer = adam  lr = 0.05  grad = mean  steps = 60  report_every = 10  dtype = float64  seed = 3  lag = 1 }
DNI
}
model "curriculum = 100  max_length = 4" > m.dni
run() { timeout 120 "$DNIC" "$@" --run --no-progress; }
lines() { grep -v '^# cur: ' "$1"; } # every line but the summary's timing

run m.dni --save-weights full.st > full.out 2>&1
want="# length 1 -> 2 at step 10
# length 2 -> 3 at step 20
# length 3 -> 4 at step 30
# curriculum: longest length solved 4 at step 40"
got=$(grep '^# length\|^# curriculum' full.out | sed 's/ (test: [^)]*)//; s/; length 4 at the end (max_length = 4)$//')
[ "$got" = "$want" ] && ok "the uninterrupted run lengthens at every report and solves max_length at step 40" ||
    not_ok "the uninterrupted run" "$got" "$(cat full.out)"

# $1: name, $2: checkpoint, then the resuming command's arguments
resumed() {
    name=$1 ck=$2; shift 2
    rm -f r.st
    run "$@" --resume "$ck" --save-weights r.st > r.out 2>&1; rc=$?
    n=$(lines r.out | wc -l)
    if [ $rc -eq 0 ] && cmp -s r.st full.st && [ "$n" -gt 1 ] && diff <(lines r.out) <(lines full.out | tail -n "$n") > /dev/null &&
        grep -q '^# curriculum: longest length solved 4 at step 40 ' r.out; then
        ok "$name: the resumed run's weights and its $n lines equal the uninterrupted run's"
    else
        not_ok "$name: resumed equals uninterrupted" "exit $rc" "$(diff <(lines r.out) <(lines full.out))"
    fi
}
for k in 10 15 33; do
    rm -f c$k.st
    DNIC_TEST_INTERRUPT_AT=$k run m.dni --checkpoint c$k.st > i$k.out 2>&1; rc=$?
    [ $rc -eq 130 ] && grep -qx "dnic: interrupted after step $k; the checkpoint is in c$k.st" i$k.out ||
        not_ok "interrupted at step $k" "exit $rc" "$(cat i$k.out)"
    resumed "interrupted after step $k" c$k.st m.dni
done
# the end of a shorter run: at a report (the length solved at its last step counts) and within
# a pass; resumed without the model file, from the checkpoint's own model and --set flags
for n in 20 25; do
    run m.dni --set train.steps=$n --checkpoint s$n.st > s$n.out 2>&1 || not_ok "a run of $n steps" "$(cat s$n.out)"
    resumed "a run of $n steps" s$n.st --set train.steps=60
done
grep -q '^# curriculum: longest length solved 2 at step 20 ' s20.out &&
    ok "a length solved at a run's last step is counted (step 20: length 2)" || not_ok "solved at the last step" "$(cat s20.out)"
# checkpoints along the way change nothing
run m.dni --checkpoint e.st --checkpoint-every 7 --save-weights e.st.w > e.out 2>&1
cmp -s e.st.w full.st && ok "--checkpoint-every 7 across the lengthenings changes no weight" ||
    not_ok "--checkpoint-every changes nothing" "$(cat e.out)"

# a model whose curriculum differs from the checkpoint's, and runs with and without one
expect_line() { # NAME LINE ARGS...: exit 1, exactly LINE among the output's lines, no weights written
    name=$1 line=$2; shift 2
    rm -f x.st
    out=$(run "$@" --save-weights x.st 2>&1); rc=$?
    if [ $rc -eq 1 ] && printf '%s\n' "$out" | grep -qxF -- "$line" && [ ! -e x.st ]; then ok "$name"; else not_ok "$name" "exit $rc" "$out"; fi
}
model "curriculum = 50  max_length = 4" > t50.dni
expect_line "another curriculum threshold is refused" "dnic: error: c15.st: data.curriculum: 1e+02 in the checkpoint, 5e+01 now" \
    t50.dni --resume c15.st
model "curriculum = 100  max_length = 5" > l5.dni
expect_line "another max_length is refused" "dnic: error: c15.st: data.max_length: 4 in the checkpoint, 5 now" \
    l5.dni --resume c15.st
model "" > plain.dni
expect_line "a curriculum checkpoint into a model without one is refused" \
    "dnic: error: c15.st: data.curriculum: 1e+02 in the checkpoint, unset now" plain.dni --resume c15.st
run plain.dni --set train.steps=20 --checkpoint p.st > /dev/null 2>&1
expect_line "a checkpoint without a curriculum into a curriculum model is refused" \
    "dnic: error: p.st: data.curriculum: unset in the checkpoint, 1e+02 now" m.dni --resume p.st
# the curriculum's state (a text in the checkpoint: length 2 since step 10, length 1 solved at
# 10 with 1.4 wrong bits per sequence, as the report line says) is checked field by field
# before anything runs
grep -q '^# length 1 -> 2 at step 10 (test: 1.4 wrong bits' full.out &&
    grep -qa "$(printf 'format = 1\nlength = 2\norigin = 10\nsolved = 1\nat = 10\nerrors = 1.4\n')" c15.st && ok "the checkpoint keeps the curriculum's state" ||
    not_ok "the checkpoint keeps the curriculum's state"
# edits keep the file's size; the file's own checksums are turned off ("checksum" -> "checksul":
# an unknown metadata key) so that the state's fields are what is read
edit() { perl -0777 -pe 's/"checksum"/"checksul"/; '"$1" c15.st > bad.st; }
edit 's/\nlength = 2\norigin/\nlength = 9\norigin/'
expect_line "a length past max_length is an error naming the file and field" \
    "dnic: error: bad.st: dnic.curriculum: length = 9, not a whole number in 1..4" m.dni --resume bad.st
edit 's/\norigin = 10\n/\norigin = 20\n/'
expect_line "an inconsistent state is an error naming the file, its fields and why" \
    "dnic: error: bad.st: dnic.curriculum is inconsistent (length = 2, origin = 20, solved = 1, at = 10, errors = 1.4): the length began at the step that solved the last one (at = origin)" \
    m.dni --resume bad.st
edit 's/\nat = 10\n/\nat = 1x\n/'
expect_line "a field that is not a number" "dnic: error: bad.st: dnic.curriculum: at = 1x, not a whole number from 0 on" \
    m.dni --resume bad.st
# the state is covered by the checkpoint's checksum: a consistent edit is still corruption
edit 's/\nerrors = 1.4\n/\nerrors = 1.3\n/'
expect_line "a consistent but edited state is corruption" "dnic: error: bad.st: the checkpoint is corrupted (its checksum does not match its contents)" \
    m.dni --resume bad.st
finish
