#!/bin/bash
# End to end: the hints that follow a common mistake (issue 17, item 11).  The corpus checks
# the errors of tests/dni/fail/30*.dni; this checks their notes, which the corpus does not, and
# the command line's own hints.  Nothing here compiles or trains a model.
. "${top_srcdir:-.}/tests/lib.sh"
cd "$top_srcdir" || exit 1
F=tests/dni/fail
M=examples/seed_dni.dni

# has NAME EXIT PATTERN ARGS...: dnic ARGS exits EXIT and prints a line matching PATTERN
has() {
    name=$1 want=$2 pat=$3; shift 3
    out=$("$DNIC" "$@" 2>&1); rc=$?
    if [ $rc -eq "$want" ] && printf '%s\n' "$out" | grep -q -- "$pat"; then ok "$name"
    else not_ok "$name" "exit $rc (want $want), no line matching: $pat" "$out"; fi
}
# lacks NAME PATTERN ARGS...: dnic ARGS exits 1 and prints no line matching PATTERN
lacks() {
    name=$1 pat=$2; shift 2
    out=$("$DNIC" "$@" 2>&1); rc=$?
    if [ $rc -eq 1 ] && ! printf '%s\n' "$out" | grep -q -- "$pat"; then ok "$name"
    else not_ok "$name" "exit $rc (want 1), or a line matching: $pat" "$out"; fi
}

# a. a path whose quotes the shell removed
has "unquoted path: how to quote it" 1 "^dnic: note: quote it for the shell too: --set 'data.train_images=\"/tmp/x.gz\"'" \
    $F/303_set_path_unquoted.dni --set data.train_images=/tmp/x.gz

# b. --set KEY = VALUE: three arguments
for args in "train.lr = 0.1" "train.lr= 0.1" "train.lr =0.1"; do
    # shellcheck disable=SC2086 # split on purpose, as the shell splits the user's line
    has "--set $args: no spaces around '='" 1 \
        "^dnic: error: --set takes KEY=VALUE as one argument, with no spaces around '=': --set train.lr=0.1$" \
        $M --set $args
done

# c. a setting's name as a flag
has "--epochs 5 points to --set train.epochs=5" 1 \
    "^dnic: error: unknown option '--epochs': settings are changed with --set, e.g. --set train.epochs=5$" $M --epochs 5
has "--batch-size=8 points to --set train.batch=8" 1 \
    "unknown option '--batch-size=8': settings are changed with --set, e.g. --set train.batch=8$" $M --batch-size=8
has "--rnu still suggests --run" 1 "unknown option '--rnu' (did you mean '--run'?)" $M --rnu

# d. other frameworks' names, and the keys when nothing is close
has "learning_rate: did you mean 'lr'" 1 "300_setting_synonym.dni:23:5: note: did you mean 'lr'?" $F/300_setting_synonym.dni
has "num_epochs: did you mean 'epochs'" 1 "300_setting_synonym.dni:24:5: note: did you mean 'epochs'?" \
    $F/300_setting_synonym.dni
has "--set train.learning_rate: did you mean 'lr'" 1 "^--set:1:7: note: did you mean 'lr'?" \
    $F/301_set_setting_synonym.dni --set train.learning_rate=0.1
has "an unknown key far from all: the keys listed" 1 \
    "^dnic: note: the settings of train are: mode, batch, lr, epochs, steps, report_every, seed, dtype, optimizer, " \
    $M --set train.foo=1

# e. widths are arguments
has "--set layer.h1.width: the note points at the call" 1 \
    "302_set_width.dni:14:12: note: --set cannot change a call; change the width here in the model file" \
    $F/302_set_width.dni --set layer.h1.width=512
has "width = 16 in the file: the note points at the call" 1 \
    "064_width_is_not_a_setting.dni:12:12: note: change the width here" $F/064_width_is_not_a_setting.dni

# f. a misspelled keyword
has "layr: did you mean 'layer'" 1 "304_misspelled_keyword.dni:13:1: note: did you mean 'layer'?" \
    $F/304_misspelled_keyword.dni

# g. commas between settings (the colon is in the error itself: 305_colon_in_setting.dni)
has "commas between settings: how settings are separated" 1 \
    "^dnic: note: settings are written 'key = value', separated by blanks or newlines, not commas$" \
    $F/020_comma_between_settings.dni

# h. no follow-on error after an unknown activation or loss (the corpus checks the count)
lacks "unknown output activation: no loss complaint" "needs the output layer" $F/306_unknown_output_activation.dni
lacks "unknown loss: no softmax complaint" "needs softmax_cross_entropy" $F/307_unknown_loss_softmax.dni

# i. did you mean only names valid there
lacks "no suggestion that would make a cycle" "did you mean" $F/308_suggest_no_cycle.dni
lacks "no suggestion of the output layer as a source" "did you mean" $F/309_suggest_not_output.dni
has "a valid close name is still suggested" 1 "did you mean 'input'?" $F/056_misspelled_input.dni

# nit: dnic plot --help
out=$("$DNIC" plot --help 2>&1); rc=$?
if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q '^usage: dnic plot \[--x step|time\] LOG.csv \[LOG.csv ...\] -o CHART.svg$'; then
    ok "dnic plot --help prints the plot usage"
else not_ok "dnic plot --help prints the plot usage" "exit $rc" "$out"; fi
# inputs against the data files' headers at --check: a gzipped IDX file (the corpus has plain ones)
gzip -c tests/dni/data/tiny-images.idx > "$TMP/im.gz"
has "--check reads a gzipped IDX header's width" 1 ":10:20: error: inputs = 28, but $TMP/im.gz has 4 inputs per example$" \
    tests/dni/fail/310_inputs_idx_width.dni --set "data.train_images=\"$TMP/im.gz\""
has "-c does not open the data" 0 "" tests/dni/fail/310_inputs_idx_width.dni -c -o "$TMP/w.o"

finish
