#!/bin/bash
# End to end: --vary (issue 17, item 10): several --vary make a grid, lists in [...] are one
# value, --log writes a log per variant, and a failed variant is reported while the others run.
. "${top_srcdir:-.}/tests/lib.sh"
cd "$top_srcdir" || exit 1
M=examples/seed_dni.dni
S=(--run --no-progress --set train.epochs=20 --set train.report_every=10)

# a 2 x 2 grid, logged and plotted
out=$("$DNIC" $M "${S[@]}" --vary sg.h1.input=output,labels --vary train.lr=0.01,0.1 \
    --log "$TMP/runs.csv" --plot "$TMP/grid.svg" 2>&1); rc=$?
n=$(printf '%s\n' "$out" | grep -c '^== ')
if [ $rc -eq 0 ] && [ "$n" -eq 4 ] && printf '%s\n' "$out" | grep -q '^== sg.h1.input=labels train.lr=0.1$'; then
    ok "two --vary make a 2 x 2 grid"
else not_ok "two --vary make a 2 x 2 grid" "exit $rc, $n variants" "$out"; fi
logs=$(ls "$TMP" | grep -c '^runs-.*\.csv$')
if [ "$logs" -eq 4 ] && [ -s "$TMP/runs-sg.h1.input=output_train.lr=0.01.csv" ]; then ok "--log writes one file per variant"
else not_ok "--log writes one file per variant" "$(ls "$TMP")"; fi
if [ -s "$TMP/grid.svg" ] && grep -q 'train.lr=0.1' "$TMP/grid.svg"; then ok "--plot draws every variant"
else not_ok "--plot draws every variant"; fi
# each row is the run with those --set
want=$("$DNIC" $M "${S[@]}" --set sg.h1.input=labels --set train.lr=0.1 2>&1 | grep '^Iter:19 ')
got=$(grep '^19,' "$TMP/runs-sg.h1.input=labels_train.lr=0.1.csv" | cut -d, -f3)
if [ -n "$want" ] && printf '%s' "$want" | grep -qF "Loss:$(printf '%.12g' "$got") "; then ok "a variant's log is the run with its --set"
else not_ok "a variant's log is the run with its --set" "run: $want" "log: $got"; fi

# a list is one value: the commas inside [...] do not split it
out=$("$DNIC" $M "${S[@]}" --set train.epochs=10 --set sg.h2.form=mlp --vary 'sg.h2.hidden=[4,8],[16]' 2>&1); rc=$?
if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q '^== sg.h2.hidden=\[4,8\]$' &&
    printf '%s\n' "$out" | grep -q '^== sg.h2.hidden=\[16\]$'; then ok "commas inside [...] do not split"
else not_ok "commas inside [...] do not split" "exit $rc" "$out"; fi

# a failed variant: reported, the others run, the table says so, exit 1 at the end
out=$("$DNIC" $M "${S[@]}" --vary train.lr=0.01,-1,0.1 --plot "$TMP/some.svg" 2>&1); rc=$?
if [ $rc -eq 1 ] && printf '%s\n' "$out" | grep -q '^dnic: variant train.lr=-1 failed; going on with the others$' &&
    printf '%s\n' "$out" | grep -q '^== train.lr=0.1$' &&
    printf '%s\n' "$out" | grep -qE '^train.lr=-1 +failed' &&
    printf '%s\n' "$out" | grep -qE '^train.lr=0.1 +[0-9]' &&
    printf '%s\n' "$out" | grep -q '^dnic: error: 1 of 3 variants failed$' && [ -s "$TMP/some.svg" ]; then
    ok "a failed variant is reported and the others run and are plotted"
else not_ok "a failed variant is reported and the others run and are plotted" "exit $rc" "$out"; fi

# the usage
out=$("$DNIC" $M --run --vary train.lr 2>&1); rc=$?
if [ $rc -eq 1 ] && printf '%s\n' "$out" | grep -q "^dnic: error: --vary is KEY=V1,V2,... (at most 8 of them), e.g. --vary sg.h1.input=output,labels, not 'train.lr'$"; then
    ok "--vary without values is refused"
else not_ok "--vary without values is refused" "exit $rc" "$out"; fi

finish
