#!/bin/bash
# End to end: --eval and --predict on saved weights, with only the predict block compiled.
# --eval scores the test set as the run's last report line did; --predict's outputs are
# --save-predictions' for the same inputs (safetensors bit for bit, CSV to the printed digits);
# mistakes are refused with a message naming the file, and nothing is half-written.
. "${top_srcdir:-.}/tests/lib.sh"
DNIC=$(cd "$(dirname "$DNIC")" && pwd)/$(basename "$DNIC")
cp "$top_srcdir/tests/dni/data/tiny.csv" "$top_srcdir/tests/dni/data/tiny-images.idx" "$TMP/"
cd "$TMP" || exit 1
cat > m.dni <<'DNI'
model tiny
data csv { train = "tiny.csv"  test = "tiny.csv"  label = 4  one_hot = 3  inputs = 4  labels = 3 }
layer h1 = dense(input, 8) { activation = tanh }
layer out = dense(h1, 3)   { activation = softmax }
loss softmax_cross_entropy(out, labels)
train { mode = backprop  batch = 2  lr = 0.05  epochs = 20  report_every = 5  dtype = float32 }
DNI

"$DNIC" m.dni --run --no-progress --save-weights w.st --save-predictions p.st > run.txt 2>&1
want=$(grep '^Iter:' run.txt | tail -1 | sed 's/.*Test loss:\([^ ]*\) accuracy:\([0-9.]*%\).*/\1 \2/')
out=$("$DNIC" m.dni --eval --load-weights w.st 2>&1); rc=$?
got=$(printf '%s\n' "$out" | awk '$1 == "test" && $2 ~ /^[0-9]+$/ { print $3, $4 }')
if [ $rc -eq 0 ] && [ -n "$want" ] && [ "$got" = "$want" ]; then ok "--eval gives the test loss and accuracy of the run's last report"
else not_ok "--eval gives the test loss and accuracy of the run's last report" "want '$want' got '$got'" "$out"; fi
if printf '%s\n' "$out" | grep -q '^test set, per class:' && [ "$(printf '%s\n' "$out" | grep -cE '^[0-2] +[0-9]+ +[0-9]+ +[0-9.]+%$')" -eq 3 ]
then ok "--eval prints a per-class table"; else not_ok "--eval prints a per-class table" "$out"; fi

sed 's/labels = 3 }/labels = 3  validation = 0.5 }/' m.dni > v.dni
"$DNIC" v.dni --run --no-progress --save-weights wv.st > runv.txt 2>&1
want=$(grep '^Iter:' runv.txt | tail -1 | sed 's/.*Validation loss:\([^ ]*\) accuracy:\([0-9.]*%\).*/\1 \2/')
out=$("$DNIC" v.dni --eval --load-weights wv.st 2>&1)
got=$(printf '%s\n' "$out" | awk '$1 == "validation" && $2 ~ /^[0-9]+$/ { print $3, $4 }')
[ -n "$want" ] && [ "$got" = "$want" ] && ok "--eval gives the validation score of the run's last report" ||
    not_ok "--eval gives the validation score of the run's last report" "want '$want' got '$got'" "$out"

"$DNIC" m.dni --predict tiny.csv --load-weights w.st -o q.safetensors > /dev/null 2>&1
cmp -s p.st q.safetensors && ok "--predict -o F.safetensors equals --save-predictions bit for bit" ||
    not_ok "--predict -o F.safetensors equals --save-predictions bit for bit"
"$DNIC" m.dni --predict tiny.csv --load-weights w.st -o q.csv > /dev/null 2>&1
# the float32 values of p.st (od prints the shortest digits, the CSV 9: equal as float32)
hlen=$(od -An -t u8 -N 8 p.st | tr -d ' ')
tail -c +$((9 + hlen)) p.st | od -An -v -t f4 -w12 > want.txt
tail -n +2 q.csv | tr , ' ' > got.txt
if [ "$(head -1 q.csv)" = "y0,y1,y2" ] && [ "$(wc -l < got.txt)" -eq 4 ] &&
    paste -d' ' want.txt got.txt | awk '{ for (i = 1; i <= 3; i++) { d = $i - $(i + 3); if (d < 0) d = -d
        if (d > 1e-7 * ($i < 0 ? -$i : $i) + 1e-30) exit 1 } }'; then
    ok "--predict -o F.csv gives --save-predictions' values"
else not_ok "--predict -o F.csv gives --save-predictions' values" "$(cat want.txt)" "$(cat q.csv)"; fi
cut -d, -f1-4 tiny.csv > nolabels.csv
out=$("$DNIC" m.dni --predict nolabels.csv --load-weights w.st 2>&1)
[ "$out" = "$(cat q.csv)" ] && ok "--predict reads a CSV without labels, and writes CSV to stdout" ||
    not_ok "--predict reads a CSV without labels, and writes CSV to stdout" "$out"
out=$("$DNIC" m.dni --predict tiny-images.idx --load-weights w.st 2>&1)
[ "$out" = "$(cat q.csv)" ] && ok "--predict reads IDX images" || not_ok "--predict reads IDX images" "$out"
out=$("$DNIC" m.dni --predict tiny.csv --load-weights w.st --dump-ir 2>&1 >/dev/null)
[ -z "$out" ] && ok "--predict prints nothing on stderr" || not_ok "--predict prints nothing on stderr" "$out"

"$DNIC" m.dni --eval --load-weights w.st --emit-llvm eval.ll > /dev/null 2>&1
"$DNIC" m.dni --run --no-progress --emit-llvm run.ll > /dev/null 2>&1
if [ "$(grep -c '^define' eval.ll)" -eq 1 ] && [ "$(grep -c '^define' run.ll)" -gt 1 ]; then
    ok "--eval compiles the predict block alone"
else not_ok "--eval compiles the predict block alone" "$(grep '^define' eval.ll)"; fi

expect_fail() { # NAME LINE ARGS...: exit 1 and exactly LINE among the output
    name=$1 line=$2; shift 2
    out=$("$DNIC" "$@" 2>&1); rc=$?
    if [ $rc -eq 1 ] && printf '%s\n' "$out" | grep -qxF -- "$line"; then ok "$name"
    else not_ok "$name" "exit $rc" "$out"; fi
}
expect_fail "--eval needs weights" "dnic: error: --eval needs --load-weights FILE" m.dni --eval
expect_fail "--predict needs weights" "dnic: error: --predict needs --load-weights FILE" m.dni --predict tiny.csv
expect_fail "--load-weights alone" "dnic: error: --load-weights works with --run, --eval or --predict" m.dni --load-weights w.st
expect_fail "-o alone" "dnic: error: -o works with -c or --predict" m.dni -o x.csv
expect_fail "missing weights" "dnic: error: cannot open 'nope.st': No such file or directory" m.dni --eval --load-weights nope.st
sed 's/dense(input, 8)/dense(input, 16)/; s/dense(h1, 3)/dense(h1, 3)/' m.dni > wide.dni
expect_fail "another model's weights" "dnic: error: w.st: tensor 'h1.weight' has shape [4,8] but the model's is [4,16]" \
    wide.dni --eval --load-weights w.st
cut -d, -f1-3 tiny.csv > narrow.csv
expect_fail "too few columns" "dnic: error: narrow.csv: 3 columns but the model declares inputs = 4" \
    m.dni --predict narrow.csv --load-weights w.st -o out.csv
expect_fail "a missing data file" "dnic: error: cannot open 'none.csv': No such file or directory" \
    m.dni --predict none.csv --load-weights w.st -o out.csv
expect_fail "an unknown output format" "dnic: error: --predict writes .csv or .safetensors (.st), not 'out.txt'" \
    m.dni --predict tiny.csv --load-weights w.st -o out.txt
[ ! -e out.csv ] && [ -z "$(ls | grep 'tmp-')" ] && ok "a refused --predict writes nothing" ||
    not_ok "a refused --predict writes nothing" "$(ls)"
finish
