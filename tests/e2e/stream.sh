#!/bin/bash
# End to end: NAME_predict_state of `dnic -c` objects carries recurrent layers' states from one
# call to the next (docs/embedding.md): a sequence fed in two halves, the state carried, gives
# the outputs and the last state of the same model of twice the steps on the whole sequence,
# for an rnn, an lstm and two stacked layers, in float64 and float32.
. "${top_srcdir:-.}/tests/lib.sh"
: "${top_builddir:=.}" "${CC:=cc}"
cd "$TMP" || exit 1

model() { # NAME STEPS LAYERS DTYPE
    cat <<DNI
model $1
data csv { train = "none.csv"  label = 0  inputs = $(($2 * 3))  labels = 2 }
$(echo "$3" | sed "s/@S/$2/g")
layer out = dense(h, 2) { activation = sigmoid }
loss sigmoid_cross_entropy(out, labels)
train { mode = backprop  batch = 4  optimizer = adam  lr = 0.01  steps = 10  dtype = $4 }
DNI
}

one() { # CASE LAYERS DTYPE
    model a 4 "$2" "$3" > a.dni
    model b 8 "$2" "$3" > b.dni
    if ! "$DNIC" a.dni -c -o a.o > err 2>&1 || ! "$DNIC" b.dni -c -o b.o > err 2>&1; then
        not_ok "$1: dnic -c" "$(cat err)"; return
    fi
    # the objects name their functions a_* and b_*; the runtime is linked once
    if ! $CC -std=c11 ${SAN_CFLAGS:-} -Wall -Wextra -Werror -I. -I"$top_srcdir/include" \
        "$top_srcdir/tests/e2e/stream.c" a.o b.o "$top_builddir/libdnic.a" -lz -lm -lpthread -o stream 2> err; then
        not_ok "$1: the program links" "$(cat err)"; return
    fi
    if out=$(./stream w.st 2>&1); then ok "$1 # $(echo "$out" | tr '\n' ';')"; else not_ok "$1" "$out"; fi
}

one "rnn, float64" 'layer h = rnn(input, 6) { steps = @S }' float64
one "lstm, float64" 'layer h = lstm(input, 5) { steps = @S }' float64
one "lstm, float32" 'layer h = lstm(input, 5) { steps = @S }' float32
one "lstm into rnn, stacked step by step" 'layer g = lstm(input, 4) { steps = @S  outputs = @S }
layer h = rnn(g, 3) { steps = @S }' float64
grep -q "STATE_SIZE 11$" b.h && grep -q "g (8), h (3)" b.h && ok "the header gives the state's layout" ||
    not_ok "the header gives the state's layout" "$(grep -B2 STATE_SIZE b.h)"

# a model without recurrent layers has neither
model c 1 'layer h = dense(input, 3)' float64 > c.dni
"$DNIC" c.dni -c -o c.o > /dev/null 2>&1
[ -s c.h ] && [ -s c.o ] && ! grep -q "predict_state\|STATE_SIZE" c.h && ! nm -g c.o | grep -q predict_state &&
    ok "a model without state has no predict_state" || not_ok "a model without state has no predict_state"
finish
