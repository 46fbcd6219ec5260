#!/bin/bash
# End to end: --check's model summary (issue 17, item 5): the first line as before, then per
# layer and SG module its kind, width, parameters, flops per step and stage, and the totals,
# with backprop's for a DNI model.  Nothing here compiles or trains.
. "${top_srcdir:-.}/tests/lib.sh"
cd "$top_srcdir" || exit 1

# same NAME WANT ARGS...: dnic ARGS exits 0 and prints exactly WANT
same() {
    name=$1 want=$2; shift 2
    out=$("$DNIC" "$@" 2>&1); rc=$?
    if [ $rc -eq 0 ] && [ "$out" = "$want" ]; then ok "$name"
    else not_ok "$name" "exit $rc; got:" "$out" "want:" "$want"; fi
}

same "seed_dni: the table and both totals" \
"examples/seed_dni.dni: ok: model seed_dni, 3 layers, 2 SG modules, 3 stages, dni
  layer            kind                      output  parameters  flops/step  stage
  h1               dense                         64        1088    4.22e+04      0
  h1.sg            sg linear(output)             64        4160    1.66e+05      0
  h2               dense                         32        2080    1.24e+05      1
  h2.sg            sg linear(output)             32        1056    4.19e+04      1
  out              dense                          8         264    1.55e+04      2
  loss             squared_error                  8           0         160      2
  total: 8648 parameters, 3.89e+05 flops per step (dni, batch 10)
  backprop: 3432 parameters, 1.81e+05 flops per step (dni does 2.14x as many)" examples/seed_dni.dni

same "seed_dni in backprop mode: no SG rows, one stage" \
"examples/seed_dni.dni: ok: model seed_dni, 3 layers, 0 SG modules, 1 stage, backprop
  layer            kind                      output  parameters  flops/step  stage
  h1               dense                         64        1088    4.22e+04      0
  h2               dense                         32        2080    1.24e+05      0
  out              dense                          8         264    1.55e+04      0
  loss             squared_error                  8           0         160      0
  total: 3432 parameters, 1.81e+05 flops per step (backprop, batch 10)" \
    examples/seed_dni.dni --set train.mode=backprop

out=$("$DNIC" examples/seed_dni.dni --check --set 'sg.h2.input=output+labels' --set sg.h2.form=mlp \
    --set 'sg.h2.hidden=[4]' 2>&1 | grep '^  h2.sg ')
# 324 parameters: (32 + 8) * 4 + 4, then 4 * 32 + 32
want="  h2.sg            sg mlp(output+labels)         32         324    1.54e+04      1"
if [ "$out" = "$want" ]; then ok "an mlp SG module that sees the labels: $out"
else not_ok "an mlp SG module that sees the labels" "$out"; fi

# the total matches the run's plan (its summary line's flops per step)
plan=$("$DNIC" examples/seed_dni.dni --run --set train.epochs=1 --set train.report_every=1 2>&1 | grep -o '[0-9.e+]* flops per step')
if [ "$plan" = "3.9e+05 flops per step" ]; then ok "the run's plan counts the same flops"
else not_ok "the run's plan counts other flops: $plan"; fi

finish
