#!/bin/bash
# End to end: the report's loss per example (loss.report_per), the wall-time plots, train.grad
# and the warnings of a run that learns nothing (issue 17, items 6 and 7).
. "${top_srcdir:-.}/tests/lib.sh"
cd "$top_srcdir" || exit 1
M=examples/seed_dni.dni
R="--run --no-progress --no-cache"
loss_at() { grep "^Iter:$2 " "$1" | sed 's/^Iter:[0-9]* Loss:\([^ ]*\).*/\1/'; }
sg_at() { grep "^Iter:$2 " "$1" | sed 's/.* Synthetic Loss:\([^ ]*\).*/\1/'; }
# close A B REL: |A - B| <= REL |B|
close() { awk -v a="$1" -v b="$2" -v r="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; exit !(d <= r * m) }'; }

# 1. report = loss prints the mean per example by default; report_per = sum the period's sum
S="--set train.epochs=20 --set train.report_every=10 --set loss.report=loss"
"$DNIC" $M $R $S --log "$TMP/mean.csv" > "$TMP/mean.out" 2>&1
"$DNIC" $M $R $S --set loss.report_per=sum > "$TMP/sum.out" 2>&1
mean=$(loss_at "$TMP/mean.out" 19) sum=$(loss_at "$TMP/sum.out" 19)
smean=$(sg_at "$TMP/mean.out" 19) ssum=$(sg_at "$TMP/sum.out" 19)
# seed_dni: batch 10, 10 steps an epoch: an epoch's sum covers 100 examples
if [ -n "$mean" ] && [ -n "$sum" ] && close "$mean" "$(awk -v s="$sum" 'BEGIN { printf "%.17g", s / 100 }')" 1e-11 &&
    close "$smean" "$(awk -v s="$ssum" 'BEGIN { printf "%.17g", s / 100 }')" 1e-11; then
    ok "report = loss: Loss: and Synthetic Loss: are the sums per example ($sum / 100 = $mean)"
else not_ok "report = loss: Loss: is the sum per example" "mean $mean sum $sum, sg $smean $ssum"; fi
row=$(tail -1 "$TMP/mean.csv" | cut -d, -f3)
close "$row" "$mean" 1e-11 && ok "the log's loss column is the line's loss per example ($row)" ||
    not_ok "the log's loss column is the line's loss per example" "$row vs $mean"

# 2. the seeds' abs kinds stay sums (tests/e2e/seeds.sh checks every digit); report_per = example divides them
"$DNIC" $M $R --set train.epochs=1000 > "$TMP/seed.out" 2>&1
"$DNIC" $M $R --set train.epochs=1000 --set loss.report_per=example > "$TMP/seedex.out" 2>&1
a=$(loss_at "$TMP/seed.out" 999) b=$(loss_at "$TMP/seedex.out" 999)
[ "$a" = 380.142015668 ] && close "$b" "$(awk -v s="$a" 'BEGIN { printf "%.17g", s / 100 }')" 1e-11 &&
    ok "report = abs_error stays a sum ($a); report_per = example divides it ($b)" ||
    not_ok "report = abs_error stays a sum" "$a $b"

# 3. plots against wall time
"$DNIC" $M $R --set train.epochs=40 --set train.report_every=10 --log "$TMP/t.csv" --plot "$TMP/t.svg" \
    --plot-x time > /dev/null 2>&1
grep -q '>wall time (s)<' "$TMP/t.svg" 2> /dev/null && ok "--plot-x time draws against the wall time" ||
    not_ok "--plot-x time draws against the wall time"
"$DNIC" plot --x time "$TMP/t.csv" -o "$TMP/t2.svg" && grep -q '>wall time (s)<' "$TMP/t2.svg" &&
    ok "dnic plot --x time draws against the wall time" || not_ok "dnic plot --x time draws against the wall time"
"$DNIC" plot "$TMP/t.csv" -o "$TMP/t3.svg" && grep -q '>step<' "$TMP/t3.svg" && ! grep -q 'wall time' "$TMP/t3.svg" &&
    ok "dnic plot draws against the steps by default" || not_ok "dnic plot draws against the steps by default"
out=$("$DNIC" plot --x days "$TMP/t.csv" -o "$TMP/t4.svg" 2>&1)
[ $? -eq 1 ] && printf '%s\n' "$out" | grep -q "^dnic: error: --x is step or time" && [ ! -e "$TMP/t4.svg" ] &&
    ok "dnic plot --x refuses another axis" || not_ok "dnic plot --x refuses another axis" "$out"
out=$("$DNIC" $M $R --plot-x time 2>&1)
[ $? -eq 1 ] && printf '%s\n' "$out" | grep -q -- "--plot-x.*--plot" && ok "--plot-x needs --plot" ||
    not_ok "--plot-x needs --plot" "$out"

# 4. train.grad: sum is the default (the IR is unchanged); mean divides by B in the IR
"$DNIC" $M --dump-ir > "$TMP/def.ir" && "$DNIC" $M --dump-ir --set train.grad=sum > "$TMP/sum.ir" &&
    cmp -s "$TMP/def.ir" "$TMP/sum.ir" && ! grep -q 'grad=' "$TMP/def.ir" &&
    ok "train.grad = sum is the default and changes no op" || not_ok "train.grad = sum is the default"
"$DNIC" $M --dump-ir --set train.grad=mean > "$TMP/mean.ir"
nw=$(grep -c ' sgd_w .*grad=mean(/10)$' "$TMP/mean.ir") nb=$(grep -c ' sgd_b .*grad=' "$TMP/mean.ir")
[ "$nw" = 5 ] && [ "$nb" = 0 ] && ok "train.grad = mean: --dump-ir marks the 5 weight updates grad=mean(/10), no bias" ||
    not_ok "train.grad = mean in --dump-ir" "$nw weight updates, $nb bias updates marked"

# 5. grad = mean with lr equals grad = sum with lr / B, up to rounding, where there is no bias
# (whose gradient is the mean either way): float64, SGD, backprop
cat > "$TMP/nobias.dni" <<'DNI'
model nobias
data binary_addition { bits = 8  examples = 100  inputs = 16  labels = 8 }
layer h1 = dense(input, 32) { activation = sigmoid  bias = false  init = randn * 0.5 }
layer out = dense(h1, 8)    { activation = sigmoid  bias = false  init = randn * 0.5 }
loss squared_error(out, labels) { report_per = sum }
train { mode = backprop  batch = 10  lr = 0.5  epochs = 50  report_every = 10  dtype = float64  seed = 3 }
DNI
"$DNIC" "$TMP/nobias.dni" $R --set train.grad=mean > "$TMP/gm.out" 2>&1
"$DNIC" "$TMP/nobias.dni" $R --set train.lr=0.05 > "$TMP/gs.out" 2>&1
"$DNIC" "$TMP/nobias.dni" $R > "$TMP/g0.out" 2>&1
a=$(loss_at "$TMP/gm.out" 49) b=$(loss_at "$TMP/gs.out" 49) c=$(loss_at "$TMP/g0.out" 49)
[ -n "$a" ] && close "$a" "$b" 1e-9 && ! close "$a" "$c" 1e-3 &&
    ok "grad = mean, lr 0.5 = grad = sum, lr 0.05 at batch 10, to 1e-9 ($a, $b; lr 0.5 summed: $c)" ||
    not_ok "grad = mean, lr = grad = sum, lr / B" "$a $b $c"

# 6. a run at chance warns once, saying what to try
printf 'x0,x1,y\n' > "$TMP/flat.csv"
for i in $(seq 1 20); do printf '0,0,%d\n' $((i % 2)) >> "$TMP/flat.csv"; done
cat > "$TMP/flat.dni" <<DNI
model flat
data csv { train = "$TMP/flat.csv"  test = "$TMP/flat.csv"  label = 2  one_hot = 2  inputs = 2  labels = 2 }
layer out = dense(input, 2) { activation = softmax }
loss softmax_cross_entropy(out, labels)
train { mode = backprop  batch = 4  lr = 0.1  epochs = 4  report_every = 1 }
DNI
"$DNIC" "$TMP/flat.dni" $R > "$TMP/flat.out" 2> "$TMP/flat.err"
W='dnic: warning: test accuracy 50.00% is at chance (50.00%) at Iter:1: the model is not learning; try train.grad = mean (by default the gradients are summed over the batch, so a PyTorch-style lr is batch times too large), or another train.lr'
[ "$(grep -c 'is at chance' "$TMP/flat.err")" = 1 ] && grep -qxF "$W" "$TMP/flat.err" &&
    ok "accuracy at chance warns once, from the second report" || not_ok "accuracy at chance warns" "$(cat "$TMP/flat.err")"
"$DNIC" "$TMP/flat.dni" $R --set train.grad=mean 2>&1 | grep -q 'is at chance (50.00%) at Iter:1: the model is not learning; try another train.lr$' &&
    ok "with grad = mean the warning suggests another lr" || not_ok "with grad = mean the warning suggests another lr"

# 7. a loss that stops moving warns once
"$DNIC" $M $R --set train.lr=1e-12 --set train.epochs=30 --set train.report_every=10 > /dev/null 2> "$TMP/still.err"
W='dnic: warning: the loss changed by less than 1e-6 of itself since the previous report (Iter:19): training has stalled; try train.grad = mean (by default the gradients are summed over the batch, so a PyTorch-style lr is batch times too large), or another train.lr'
[ "$(grep -c 'stalled' "$TMP/still.err")" = 1 ] && grep -qxF "$W" "$TMP/still.err" &&
    ok "a loss that stops moving warns once" || not_ok "a loss that stops moving warns once" "$(cat "$TMP/still.err")"

# 8. a run that learns says nothing
"$DNIC" $M $R --set train.epochs=3000 2> "$TMP/learn.err" > /dev/null
[ ! -s "$TMP/learn.err" ] && ok "a learning run gives no training warning" ||
    not_ok "a learning run gives no training warning" "$(cat "$TMP/learn.err")"
# 9. the progress line shows the mean so far in the period (it does not rise through an epoch),
# or with report_per = sum the running sum, marked
"$DNIC" $M --run --no-cache --progress --set loss.report=loss --set train.epochs=10000 2> "$TMP/prog.err" > /dev/null
vals=$(tr '\r' '\n' < "$TMP/prog.err" | sed -n 's/.* loss \([0-9.e+-]*\)$/\1/p')
[ -n "$vals" ] && printf '%s\n' "$vals" | awk '$1 > 4 { exit 1 }' &&
    ok "the progress line's loss is per example ($(printf '%s\n' "$vals" | wc -l) draws)" ||
    not_ok "the progress line's loss is per example" "$(tr '\r' '\n' < "$TMP/prog.err" | cat -v | head -5)"
"$DNIC" $M --run --no-cache --progress --set train.epochs=5000 2> "$TMP/progs.err" > /dev/null
tr '\r' '\n' < "$TMP/progs.err" | grep -q ' loss [0-9.e+-]* (sum)$' && ok "with report_per = sum it says (sum)" ||
    not_ok "with report_per = sum the progress line says (sum)" "$(tr '\r' '\n' < "$TMP/progs.err" | cat -v | head -5)"
finish
