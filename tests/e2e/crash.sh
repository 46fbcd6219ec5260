#!/bin/bash
# Crash safety: 50 runs killed with SIGKILL while they write checkpoints (--checkpoint-every 1)
# and weights (--save-weights, --save-best).  After every kill each file is the previous one or
# a complete new one (it loads: the checkpoint resumes, the weights score), at most one
# temporary per file is left (the killed write's), and after the next whole run none is.
# 30 kills are placed by the test hook DNIC_TEST_KILL_AT=N:STAGE (the N-th file write dies
# before its flush, after its fsync, or after its rename), 20 by `kill -9` after a delay; both
# are drawn from a fixed seed; then 10 SIGTERM or SIGINT.  The verdicts hold wherever a signal
# lands, so none depends on timing.
. "${top_srcdir:-.}/tests/lib.sh"
cd "$TMP" || exit 1
M=$top_srcdir/tests/e2e/models/four_stages.dni
V="--set data.validation=0.25 --set train.report_every=1"
# exec: `run ... &` is then dnic itself, which kill -9 must reach (not a subshell around it)
run() { exec "$DNIC" "$M" --run --no-progress --checkpoint c.st --checkpoint-every 1 --save-weights w.st --save-best b.st $V "$@"; }

seed=18
rand() { # rand N: a number in [0, N) from the seeded sequence
    seed=$(((seed * 1103515245 + 12345) % 2147483648))
    r=$(((seed / 65536) % $1))
}

# each file loads whole: the checkpoint resumes (one step, then the test hook stops it), the
# weights are scored
valid() {
    DNIC_TEST_INTERRUPT_AT=1 "$DNIC" --resume c.st --run --no-progress --set train.epochs=100000 > /dev/null 2> v.err
    [ $? -eq 130 ] || { echo "c.st does not resume: $(cat v.err)"; return 1; }
    for w in w.st b.st; do
        "$DNIC" "$M" $V --eval --load-weights $w > /dev/null 2> v.err || { echo "$w does not load: $(cat v.err)"; return 1; }
    done
}
temps() { ls -A | grep -c "\.tmp-"; }
per_file_temps() { # at most one temporary per target
    for f in c.st w.st b.st; do
        n=$(ls -A | grep -c "^$f\.tmp-")
        [ "$n" -le 1 ] || { echo "$n temporaries of $f"; return 1; }
    done
}

# the previous files, whole
(run --set train.epochs=4) > /dev/null 2>&1 && valid > /dev/null && ok "a whole run writes files that load" ||
    not_ok "a whole run writes files that load" "$(valid)"

bad=0 why= left=0 died=0
for i in $(seq 1 30); do
    # a 12-epoch run writes 15 files (12 checkpoints, b.st twice, w.st last): each write can be hit
    rand 15; n=$((r + 1)); rand 3; stage=$r
    (DNIC_TEST_KILL_AT=$n:$stage run --set train.epochs=12) > /dev/null 2>&1
    rc=$?
    [ $rc -eq 137 ] && died=$((died + 1))
    left=$((left + $(temps)))
    if ! msg=$(valid && per_file_temps); then
        bad=$((bad + 1)); why="$why kill $i (write $n, stage $stage, exit $rc): $msg;"
    fi
done 2> /dev/null # the shell's "Killed" notices
[ $bad -eq 0 ] && [ $died -eq 30 ] &&
    ok "30 kills at chosen writes: every file loads, at most one temporary each ($left temporaries seen)" ||
    not_ok "30 kills at chosen writes" "$died of 30 runs killed" "$why"

bad=0 why= left=0
for i in $(seq 1 20); do
    rand 400; ms=$((r + 20))
    run --set train.epochs=100000 > /dev/null 2>&1 &
    pid=$!
    sleep "$(printf '0.%03d' $ms)"
    { kill -9 $pid && wait $pid; } 2> /dev/null
    left=$((left + $(temps)))
    if ! msg=$(valid && per_file_temps); then
        bad=$((bad + 1)); why="$why kill $i (after ${ms} ms): $msg;"
    fi
done
[ $bad -eq 0 ] && ok "20 kill -9 at seeded moments: every file loads, at most one temporary each ($left temporaries seen)" ||
    not_ok "20 kill -9 at seeded moments" "$why"

# SIGTERM and SIGINT at seeded moments: the run stops at a step boundary and writes its files
# (exit 130), or had finished (0), or had not yet set its handlers (143, 130 from the shell);
# whichever, every file loads
bad=0 why=
for i in $(seq 1 10); do
    rand 300; ms=$((r + 10)); rand 2; sig=$([ $r -eq 0 ] && echo TERM || echo INT)
    run --set train.epochs=100000 > /dev/null 2>&1 &
    pid=$!
    sleep "$(printf '0.%03d' $ms)"
    kill -$sig $pid 2> /dev/null
    wait $pid 2> /dev/null
    rc=$?
    case $rc in 0 | 130 | 143) ;; *) bad=$((bad + 1)); why="$why SIG$sig after ${ms} ms: exit $rc;" ;; esac
    if ! msg=$(valid && per_file_temps); then
        bad=$((bad + 1)); why="$why SIG$sig after ${ms} ms: $msg;"
    fi
done
[ $bad -eq 0 ] && ok "10 SIGTERM or SIGINT at seeded moments: exit 130 (or 0, 143), every file loads" ||
    not_ok "SIGTERM and SIGINT at seeded moments" "$why"

(run --set train.epochs=2) > /dev/null 2>&1
n=$(temps)
[ "$n" -eq 0 ] && valid > /dev/null && ok "the next whole run leaves no temporary" ||
    not_ok "the next whole run leaves no temporary" "$(ls -A)"
finish
