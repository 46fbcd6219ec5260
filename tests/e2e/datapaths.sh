#!/bin/bash
# End to end: where data files are read from.  A relative data path in a model file is relative
# to the model file's directory, whatever directory dnic runs in; a missing file's message names
# the path as resolved; -c reads no data (it needs only the widths the data block declares).
. "${top_srcdir:-.}/tests/lib.sh"
DNIC=$(cd "$(dirname "$DNIC")" && pwd)/$(basename "$DNIC")
mkdir -p "$TMP/proj/data" "$TMP/elsewhere"
cp "$top_srcdir/tests/dni/data/tiny.csv" "$TMP/proj/data/"
cat > "$TMP/proj/m.dni" <<'DNI'
model paths
data csv { train = "data/tiny.csv"  label = 4  one_hot = 3  inputs = 4  labels = 3 }
layer h1 = dense(input, 8) { activation = tanh }
layer out = dense(h1, 3)   { activation = softmax }
loss softmax_cross_entropy(out, labels)
train { mode = backprop  batch = 2  lr = 0.1  epochs = 1 }
DNI

cd "$TMP/elsewhere" || exit 1
check "--check from another directory finds data next to the model" "$DNIC" ../proj/m.dni --check
out=$("$DNIC" ../proj/m.dni --run --no-progress 2>&1) && ok "--run from another directory reads data next to the model" ||
    not_ok "--run from another directory reads data next to the model" "$out"

rm "$TMP/proj/data/tiny.csv"
out=$("$DNIC" ../proj/m.dni --check 2>&1); rc=$?
want="../proj/m.dni:2:20: error: cannot open data file '../proj/data/tiny.csv': no such file or directory"
if [ $rc -eq 1 ] && printf '%s\n' "$out" | grep -qxF "$want"; then ok "a missing data file's message names the resolved path"
else not_ok "a missing data file's message names the resolved path" "exit $rc" "$out"; fi

out=$("$DNIC" ../proj/m.dni -c -o "$TMP/m.o" 2>&1) && [ -s "$TMP/m.o" ] && [ -s "$TMP/m.h" ] &&
    ok "-c needs no data files" || not_ok "-c needs no data files" "$out"

out=$("$DNIC" ../proj/m.dni --check --set data.train='"../proj/data/x.csv"' 2>&1); rc=$?
want="--set:1:12: error: cannot open data file '../proj/data/x.csv': no such file or directory"
if [ $rc -eq 1 ] && printf '%s\n' "$out" | grep -qxF -- "$want"; then ok "a --set data path is relative to the current directory"
else not_ok "a --set data path is relative to the current directory" "exit $rc" "$out"; fi
finish
