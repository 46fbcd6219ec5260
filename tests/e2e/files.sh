#!/bin/bash
# End to end: weights, data and log files.  Saved weights load back bit for bit, a run resumed
# from saved weights continues exactly like an uninterrupted one, and the loader refuses files
# that do not fit the model with a message naming the file and the tensor.
. "${top_srcdir:-.}/tests/lib.sh"
cd "$top_srcdir" || exit 1
M=examples/seed_dni.dni
run() { "$DNIC" "$M" --run --no-progress "$@"; }

run --set train.epochs=20 --save-weights "$TMP/w20.st" > /dev/null 2>&1
run --set train.epochs=10 --save-weights "$TMP/w10.st" > /dev/null 2>&1
run --set train.epochs=10 --load-weights "$TMP/w10.st" --save-weights "$TMP/w10b.st" > /dev/null 2>&1
if cmp -s "$TMP/w20.st" "$TMP/w10b.st"; then ok "10 epochs + resume + 10 epochs = 20 epochs, bit for bit"
else not_ok "10 epochs + resume + 10 epochs = 20 epochs, bit for bit"; fi
cmp -s "$TMP/w10.st" "$TMP/w20.st" && not_ok "the resume test compares different states" || ok "the resume test compares different states"

run --set train.epochs=1 --save-init "$TMP/i.st" > /dev/null 2>&1
run --set train.epochs=1 --load-weights "$TMP/i.st" --save-init "$TMP/i2.st" > /dev/null 2>&1
if cmp -s "$TMP/i.st" "$TMP/i2.st"; then ok "weights load back bit for bit"; else not_ok "weights load back bit for bit"; fi

run --set train.epochs=30 --set train.report_every=10 --log "$TMP/l.csv" > /dev/null 2>&1
if [ "$(head -1 "$TMP/l.csv")" = "iter,step,loss,h1.sg_loss,h2.sg_loss,elapsed_s" ] && [ "$(wc -l < "$TMP/l.csv")" -eq 4 ] &&
    grep -q '^29,300,' "$TMP/l.csv"; then ok "--log writes a header and one row per report"
else not_ok "--log writes a header and one row per report" "$(cat "$TMP/l.csv")"; fi
[ ! -e "$TMP/l.csv.tmp" ] && ok "--log leaves no temporary file" || not_ok "--log leaves no temporary file"

run --set train.epochs=1 --export-data "$TMP/d.st" > /dev/null 2>&1
# x is 100 x 16 float64, y 100 x 8: header + 8 + (1600 + 800) * 8 bytes
size=$(stat -c %s "$TMP/d.st"); hlen=$(od -An -t u8 -N 8 "$TMP/d.st" | tr -d ' ')
if [ "$size" -eq $((8 + hlen + 2400 * 8)) ] && head -c $((8 + hlen)) "$TMP/d.st" | grep -q '"x":{"dtype":"F64","shape":\[100,16\]'; then
    ok "--export-data writes x [100,16] and y [100,8]"
else not_ok "--export-data writes x [100,16] and y [100,8]" "size $size header $hlen"; fi

expect_fail() { # NAME PATTERN ARGS...
    name=$1 pat=$2; shift 2
    out=$("$DNIC" "$@" 2>&1); rc=$?
    if [ $rc -eq 1 ] && printf '%s\n' "$out" | grep -qF -- "$pat"; then ok "$name"
    else not_ok "$name" "exit $rc" "$out"; fi
}
"$DNIC" examples/seed_backprop.dni --run --no-progress --set train.epochs=1 --save-weights "$TMP/bp.st" > /dev/null 2>&1
expect_fail "another model's weights are refused" \
    "error: $TMP/bp.st: tensor 'h1.weight' has shape [16,128] but the model's is [16,64]" $M --run --load-weights "$TMP/bp.st"
run --set train.epochs=1 --set train.dtype=float32 --save-weights "$TMP/f32.st" > /dev/null 2>&1
expect_fail "a float32 file into a float64 model is refused" \
    "error: $TMP/f32.st: tensor 'h1.weight' is F32 but the model is trained in F64" $M --run --load-weights "$TMP/f32.st"
head -c 100 "$TMP/w10.st" > "$TMP/trunc.st"
expect_fail "a truncated file is refused" "error: $TMP/trunc.st: the weights file is truncated or corrupted: its header length (bytes 0-7) is" $M --run --load-weights "$TMP/trunc.st"
"$DNIC" examples/seed_dni.dni --run --no-progress --set train.epochs=1 --set sg.h1.form=mlp --set 'sg.h1.hidden=[4]' \
    --save-weights "$TMP/mlp.st" > /dev/null 2>&1
expect_fail "a file with other tensors is refused" "error: $TMP/mlp.st: tensor 'h1.sg.weight' is missing" \
    $M --run --load-weights "$TMP/mlp.st"
expect_fail "an unwritable path is an error" "error: cannot write '$TMP/no/w.st'" $M --run --set train.epochs=1 --save-weights "$TMP/no/w.st"
expect_fail "--save-weights needs --run" "error: --save-weights works with --run" $M --save-weights "$TMP/x.st"
ls "$TMP/no" > /dev/null 2>&1 && not_ok "nothing is left behind" || ok "nothing is left behind"
finish
