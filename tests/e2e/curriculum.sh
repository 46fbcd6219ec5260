#!/bin/bash
# End to end: the copy tasks' curriculum inside one run (data copy { curriculum  max_length }).
# A threshold every report meets lengthens the sequences at every report, one that none meets
# never does; a run that lengthens at steps S1, S2 ends with the very weights (float64, byte for
# byte) of a chain of runs without the curriculum, one length each, each from the last one's
# weights (SGD: no optimiser state to restart) — an independent check that the parameters carry
# over exactly, that the data of a length is drawn as a run at that length draws it and read
# from its first example, and that nothing else changes at a lengthening.
. "${top_srcdir:-.}/tests/lib.sh"
DNIC=$(cd "$(dirname "$DNIC")" && pwd)/$(basename "$DNIC")
TOP=$(cd "$top_srcdir" && pwd)
EVAL=$TOP/bench/copy_eval.py REF=$TOP/tests/ref
cd "$TMP" || exit 1

# $1: the data block's curriculum settings (empty: none), $2: the length, $3: steps
model() {
    cat <<DNI
model cur
data copy { bits = 3  length = $2  examples = 160  test_examples = 40  $1 }
layer h   = lstm(input, 8)
layer out = dense(h, 3) { activation = sigmoid }
sg h.state { init = zeros  scale = 0.1 }
loss sigmoid_cross_entropy(out, labels)
train { mode = dni  unroll = 2  batch = 8  optimizer = sgd  lr = 0.5  grad = mean  steps = $3  report_every = 10  dtype = float64  seed = 3 }
DNI
}

# (a), (c): a threshold of 100 wrong bits per sequence is met at every report (at most 3 * 3
# bits can be wrong at length 3): 1 -> 2 at step 10, 2 -> 3 at 20, length 3 (max_length) solved
# at 30, where the run ends
model "curriculum = 100  max_length = 3" 1 100 > all.dni
"$DNIC" all.dni --run --no-progress --save-weights cur.st > all.out 2>&1; rc=$?
want="# length 1 -> 2 at step 10
# length 2 -> 3 at step 20
# curriculum: longest length solved 3 at step 30"
got=$(grep '^# length\|^# curriculum' all.out | sed 's/ (test: [^)]*)//; s/; length 3 at the end (max_length = 3)$//')
[ $rc -eq 0 ] && [ "$got" = "$want" ] &&
    ok "a threshold met at every report lengthens at every report, up to max_length, and the run ends there" ||
    not_ok "a threshold met at every report lengthens at every report" "exit $rc" "got: $got" "$(cat all.out)"
n=$(grep -c '^Iter:' all.out)
last=$(grep '^Iter:' all.out | tail -1 | cut -d' ' -f1)
[ "$n" = 3 ] && [ "$last" = "Iter:29" ] && grep -q '^# cur: 30 steps in' all.out &&
    ok "one report line per 10 steps, numbered across the lengths (Iter:9, 19, 29), 30 steps in the summary" ||
    not_ok "report lines across the lengths" "$(cat all.out)"

# (b): the chain of runs, one length each, without the curriculum: 10 steps at length 1, 10 at
# 2 from its weights, 10 at 3 from those
prev=""
for L in 1 2 3; do
    model "" "$L" 10 > "L$L.dni"
    # shellcheck disable=SC2086
    "$DNIC" "L$L.dni" --run --no-progress ${prev:+--load-weights "$prev"} --save-weights "L$L.st" > "L$L.out" 2>&1 ||
        not_ok "chain run at length $L" "$(cat "L$L.out")"
    prev=L$L.st
done
cmp -s cur.st L3.st &&
    ok "the curriculum run's weights are, byte for byte in float64, the chain of 3 runs' (one length each)" ||
    not_ok "the curriculum run's weights equal the chain's" "$(cat all.out L3.out)"
# the test scores of each length agree too (the chain's last report line of each length)
bad=""
for L in 1 2 3; do
    c=$(grep '^Iter:' all.out | sed -n "${L}p" | sed 's/^Iter:[0-9]* //; s/ wrong bits:.*//')
    h=$(grep '^Iter:' "L$L.out" | tail -1 | sed 's/^Iter:[0-9]* //')
    if [ -z "$c" ] || [ "$c" != "$h" ]; then bad="$bad length $L: curriculum '$c', chain '$h'"; fi
done
[ -z "$bad" ] && ok "each length's report (loss, synthetic loss, test loss and accuracy) equals the chain run's" ||
    not_ok "each length's report equals the chain run's" "$bad"

# The same with Adam against tests/ref/seq_ref.py, an independent float64 numpy reference given
# the schedule 6 steps at length 1, 6 at 2, 6 at 3 (its parameters and Adam's moments and step
# counts carried on): every report's loss (summed over its 6 steps) and every final weight to 1e-9
if /usr/bin/python3 -c 'import numpy' 2> /dev/null; then
    cat > adam.dni <<'DNI'
model seq_ref
data copy { bits = 2  length = 1  examples = 20  test_examples = 10  seed = 11  curriculum = 100  max_length = 3 }
layer h = lstm(input, 5)  { init = randn * 0.3  bias_init = randn * 0.1 }
layer out = dense(h, 2) { activation = sigmoid  init = randn * 0.3  bias_init = randn * 0.1 }
sg h.state { init = randn * 0.1  bias_init = randn * 0.1  scale = 0.1 }
loss sigmoid_cross_entropy(out, labels) { report = loss  report_per = sum }
train { mode = dni  unroll = 2  batch = 5  optimizer = adam  lr = 0.01  steps = 100  report_every = 6  seed = 3  dtype = float64 }
DNI
    "$DNIC" adam.dni --run --no-progress --log adam.csv --save-weights adam.st > adam.out 2>&1
    /usr/bin/python3 "$REF/seq_ref.py" dni lstm 2 1 20 11 5 5 2 0.01 3 0 0.1 adam 1:6,2:6,3:6 |
        awk '/^loss /{ s += $2; if (++n % 6 == 0) { printf "loss %.17g\n", s; s = 0 } next } { print }' > adam.ref
    lines=$(grep -c '^# length' adam.out)
    if [ "$lines" = 2 ] && res=$(/usr/bin/python3 "$REF/compare_ref.py" adam.csv adam.st adam.ref 2>&1); then
        ok "Adam across 2 lengthenings: reports and final weights equal the numpy reference's # $res"
    else
        not_ok "Adam across 2 lengthenings equals the numpy reference" "$res" "$(cat adam.out)"
    fi
else
    tap_n=$((tap_n + 1))
    echo "ok $tap_n # SKIP python3-numpy is not installed (the README's setup command installs it)"
fi

# a threshold no report meets: no lengthening, and the summary says no length was solved
model "curriculum = 0.0001  max_length = 3" 1 30 > none.dni
"$DNIC" none.dni --run --no-progress > none.out 2>&1; rc=$?
[ $rc -eq 0 ] && ! grep -q '^# length' none.out &&
    grep -q '^# curriculum: no length solved (length 1: never under 0.0001 wrong bits per test sequence)' none.out &&
    ok "a threshold never met: no lengthening, 'no length solved'" ||
    not_ok "a threshold never met" "exit $rc" "$(cat none.out)"
# the chain's first run is the same run: a curriculum that never lengthens changes no number
model "" 1 30 > plain.dni
"$DNIC" plain.dni --run --no-progress > plain.out 2>&1
a=$(grep '^Iter:' none.out | sed 's/ wrong bits:.*//')
b=$(grep '^Iter:' plain.out)
[ -n "$a" ] && [ "$a" = "$b" ] && ok "a curriculum never met trains exactly as the run without it" ||
    not_ok "a curriculum never met trains as the run without it" "$a" "$b"

# the wrong bits per sequence, independently: bench/copy_eval.py's own numpy forward pass of
# the final weights on the run's test set (sequences 160..199 of the data's stream, seed 1)
"$DNIC" none.dni --run --no-progress --save-weights none.st > none2.out 2>&1
if /usr/bin/python3 -c 'import numpy' 2> /dev/null; then
    ref=$(/usr/bin/python3 "$EVAL" none.st 3 1 200 1 0 160 | awk '{print $2}')
    got=$(grep '^Iter:' none2.out | tail -1 | sed 's/.* wrong bits://')
    awk -v a="$ref" -v b="$got" 'BEGIN { exit !(a != "" && b != "" && a + 0 == b + 0) }' &&
        ok "the report's wrong bits per test sequence ($got) are bench/copy_eval.py's ($ref)" ||
        not_ok "the report's wrong bits per test sequence are bench/copy_eval.py's" "dnic: $got" "numpy: $ref"
else
    tap_n=$((tap_n + 1))
    echo "ok $tap_n # SKIP python3-numpy is not installed (the README's setup command installs it)"
fi
# a pipeline needs one model for the whole run: it refuses a curriculum (checkpoints and
# --resume do not: tests/e2e/curriculum_resume.sh)
out=$("$DNIC" all.dni --run --no-progress --schedule pipeline --save-weights pp.st 2>&1); rc=$?
f="--schedule pipeline"
[ $rc -eq 1 ] && [ "$(echo "$out" | head -1)" = "dnic: error: $f: the data's curriculum compiles the model again at each new length, and $f needs one model for the whole run" ] &&
    ok "$f with a curriculum: an error, exit 1" || not_ok "$f with a curriculum: an error, exit 1" "exit $rc" "$out"
[ ! -e pp.st ] && ok "nothing written by the refused run" || not_ok "nothing written by the refused run"

# a model that checks at its length but not at the next one is refused before training: a
# batch-normalised layer reads the lstm's 1 step at length 1, its 2 at length 2
sed 's/{ activation = sigmoid }/{ activation = sigmoid  norm = batch  bias = false }/' all.dni > bn.dni
out=$("$DNIC" bn.dni --run --no-progress 2>&1); rc=$?
[ $rc -eq 1 ] && printf '%s\n' "$out" | grep -qxF "bn.dni:4:19: error: a layer with norm = batch cannot read the 2 steps of 'h' one at a time: its statistics would mix the steps" &&
    printf '%s\n' "$out" | grep -qxF "bn.dni:2:1: note: the errors above are the model's at length 2, where the curriculum goes next" &&
    ! printf '%s\n' "$out" | grep -q '^Iter:' &&
    ok "a model that fails at the next length: its errors there, named as such, before any step" ||
    not_ok "a model that fails at the next length is refused before training" "exit $rc" "$out"

# steps taken from the data are held to the 4096 a recurrent layer takes, like written ones
cat > long.dni <<'DNI'
model m
data repeat_copy { bits = 4  length = 50  repeats = 100  examples = 64  test_examples = 16 }
layer h = lstm(input, 8)
layer out = dense(h, 5) { activation = sigmoid }
loss sigmoid_cross_entropy(out, labels)
train { batch = 8  lr = 0.1  steps = 10 }
DNI
out=$("$DNIC" long.dni --check 2>&1); rc=$?
[ $rc -eq 1 ] && [ "$(printf '%s\n' "$out" | grep -c ': error: ')" = 1 ] &&
    printf '%s\n' "$out" | grep -qxF "long.dni:3:11: error: lstm 'h' reads the data's sequences of 5052 steps, more than the 4096 it takes" &&
    ok "steps from the data longer than 4096: one located error" || not_ok "steps from the data longer than 4096" "exit $rc" "$out"
finish
