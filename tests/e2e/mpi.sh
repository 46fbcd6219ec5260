#!/bin/bash
# End to end: stages on the ranks of an MPI job (mpirun -np K dnic M.dni --run) compute what the
# sequential run computes, bit for bit (weights files, report lines, checkpoints), for 2, 3 and
# 4 ranks on this machine's cores; resuming works with another number of ranks; a rank that is
# killed, never answers, or lacks a data file ends the job with a message naming it, no hang.
# Skipped (exit 77) only when dnic was built without MPI.
. "${top_srcdir:-.}/tests/lib.sh"
cd "$top_srcdir" || exit 1
if ! "$DNIC" --version | grep -q MPI; then
    echo "1..0 # SKIP dnic was built without MPI (./configure --without-mpi, or no Open MPI found)"
    exit 77
fi
# as root on a 2-core machine, over loopback; every mpirun ends within its limit, whatever happens
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
# in the ASan build, LeakSanitizer reports what Open MPI leaves allocated at exit (its unloaded
# components): still printed, but not allowed to change the exit statuses checked here
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}exitcode=0"
mpi() { np=$1; shift; timeout -s KILL 120 mpirun -np "$np" "$DNIC" "$@" --run --no-progress; }
seq_run() { timeout 120 "$DNIC" "$@" --run --no-progress --schedule sequential; }
# same NAME A B: the weights files A.st and B.st and the report lines of A.out and B.out are equal
same() {
    if grep -q '^Iter' "$TMP/$2.out" && cmp -s "$TMP/$2.st" "$TMP/$3.st" &&
        diff <(grep '^Iter' "$TMP/$2.out") <(grep '^Iter' "$TMP/$3.out") > /dev/null; then
        ok "$1"
    else
        not_ok "$1" "$(tail -5 "$TMP/$3.out")"
    fi
}

nm "$top_builddir/libdnic.a" 2> /dev/null | grep -q 'MPI_' && not_ok "libdnic does not depend on MPI" ||
    ok "libdnic does not depend on MPI"

M4=tests/e2e/models/four_stages.dni
seq_run $M4 --set train.lag=1 --save-weights "$TMP/s4.st" > "$TMP/s4.out" 2>&1
for np in 2 3 4; do
    mpi $np $M4 --set train.lag=1 --save-weights "$TMP/m4-$np.st" > "$TMP/m4-$np.out" 2>&1
    same "four stages, lag 1, on $np ranks = sequential" s4 m4-$np
done
grep -q 'mpi: 4 stages on 3 ranks (0 1 2-3)' "$TMP/m4-3.out" && ok "the summary names each rank's stages" ||
    not_ok "the summary names each rank's stages" "$(tail -1 "$TMP/m4-3.out")"
mpi 2 $M4 --set train.lag=1 --placement 3,1 --save-weights "$TMP/p31.st" > "$TMP/p31.out" 2>&1
grep -q 'mpi: 4 stages on 2 ranks (0-2 3)' "$TMP/p31.out" && same "--placement 3,1 places the stages as asked, same numbers" s4 p31 ||
    not_ok "--placement 3,1 places the stages as asked" "$(tail -3 "$TMP/p31.out")"

# a graph: skip connections, merges, batch normalisation, a stage ending at three SG modules
MG=tests/e2e/models/graph_dni.dni
seq_run $MG --set train.lag=2 --save-weights "$TMP/sg.st" > "$TMP/sg.out" 2>&1
for np in 2 3; do
    mpi $np $MG --set train.lag=2 --save-weights "$TMP/mg-$np.st" > "$TMP/mg-$np.out" 2>&1
    same "graph, lag 2, on $np ranks = sequential" sg mg-$np
done

# recurrent layers: an lstm and an rnn, SG modules at their truncation boundaries (which learn in
# their layer's stage) and on their outputs
MR=tests/e2e/models/rnn_dni.dni
seq_run $MR --save-weights "$TMP/sr.st" > "$TMP/sr.out" 2>&1
mpi 3 $MR --save-weights "$TMP/mr.st" > "$TMP/mr.out" 2>&1
same "recurrent graph, lag 1, on 3 ranks = sequential" sr mr

# the seed model (lag 0: every stage waits for the next one's targets each step)
seq_run examples/seed_dni.dni --set train.epochs=200 --set train.report_every=50 --save-weights "$TMP/ss.st" > "$TMP/ss.out" 2>&1
mpi 3 examples/seed_dni.dni --set train.epochs=200 --set train.report_every=50 --save-weights "$TMP/ms.st" > "$TMP/ms.out" 2>&1
same "seed model on 3 ranks = sequential" ss ms

# the wide model (large messages, several stages per rank), fewer steps
W="--set data.examples=256 --set train.epochs=1"
seq_run examples/wide_dni.dni $W --save-weights "$TMP/sw.st" > "$TMP/sw.out" 2>&1
mpi 4 examples/wide_dni.dni $W --save-weights "$TMP/mw.st" > "$TMP/mw.out" 2>&1
same "wide model on 4 ranks = sequential" sw mw

# checkpoints: rank 0 writes the sequential run's file; a resume with other numbers of ranks
# (or one process) finishes the same run
A="--set train.lag=1 --set train.optimizer=adam --set train.lr=0.001 --set train.shuffle=true"
seq_run $M4 $A --set train.epochs=30 --save-weights "$TMP/full.st" > "$TMP/full.out" 2>&1
seq_run $M4 $A --set train.epochs=12 --checkpoint "$TMP/cs.st" --checkpoint-every 5 > /dev/null 2>&1
mpi 3 $M4 $A --set train.epochs=12 --checkpoint "$TMP/cm.st" --checkpoint-every 5 > "$TMP/cm.out" 2>&1
cmp -s "$TMP/cs.st" "$TMP/cm.st" && ok "3 ranks write the sequential run's checkpoint, byte for byte" ||
    not_ok "3 ranks write the sequential run's checkpoint" "$(cat "$TMP/cm.out")"
mpi 2 $M4 $A --set train.epochs=30 --resume "$TMP/cm.st" --save-weights "$TMP/r2.st" > "$TMP/r2.out" 2>&1
cp "$TMP/full.out" "$TMP/full2.out"
cmp -s "$TMP/full.st" "$TMP/r2.st" && diff <(grep '^Iter:29' "$TMP/full.out") <(grep '^Iter:29' "$TMP/r2.out") > /dev/null &&
    ok "a 3-rank checkpoint resumed on 2 ranks finishes the same run" || not_ok "resume on 2 ranks" "$(cat "$TMP/r2.out")"
DNIC_TEST_INTERRUPT_AT=77 mpi 4 $M4 $A --set train.epochs=30 --checkpoint "$TMP/i.st" > "$TMP/i.out" 2>&1
rc=$?
[ $rc -eq 130 ] && grep -q "dnic: interrupted after step .*; the checkpoint is in $TMP/i.st" "$TMP/i.out" &&
    ok "an interrupt on 4 ranks saves a checkpoint and exits 130" || not_ok "an interrupt on 4 ranks" "exit $rc" "$(cat "$TMP/i.out")"
seq_run $M4 $A --set train.epochs=30 --resume "$TMP/i.st" --save-weights "$TMP/ri.st" > /dev/null 2>&1
cmp -s "$TMP/full.st" "$TMP/ri.st" && ok "a 4-rank checkpoint resumed in one process finishes the same run" ||
    not_ok "a 4-rank checkpoint resumed in one process"
# SIGTERM to every rank (as mpirun forwards it), wherever it lands once training runs (the first
# periodic checkpoint says so: every rank has caught SIGTERM by then)
timeout -s KILL 120 mpirun -np 3 "$DNIC" $M4 --run --no-progress $A --set train.epochs=20000 --checkpoint "$TMP/t.st" \
    --checkpoint-every 50 > "$TMP/t.out" 2>&1 &
pid=$!
for _ in $(seq 600); do
    [ -f "$TMP/t.st" ] && break
    sleep 0.1
done
ranks=$(pgrep -P "$(pgrep -P $pid | head -1)" 2> /dev/null)
kill -TERM $ranks 2> /dev/null
wait $pid
rc=$?
if [ $rc -eq 130 ] && grep -q "dnic: interrupted after step .*; the checkpoint is in $TMP/t.st" "$TMP/t.out"; then
    mpi 2 $M4 $A --set train.epochs=20000 --resume "$TMP/t.st" --save-weights "$TMP/tres.st" > /dev/null 2>&1
    seq_run $M4 $A --set train.epochs=20000 --save-weights "$TMP/tfull.st" > /dev/null 2>&1
    cmp -s "$TMP/tfull.st" "$TMP/tres.st" && ok "SIGTERM on 3 ranks, then a resume on 2, equals the uninterrupted run" ||
        not_ok "SIGTERM on 3 ranks, then a resume on 2, equals the uninterrupted run"
else
    not_ok "SIGTERM to the ranks saves a checkpoint and exits 130" "exit $rc" "ranks: $ranks" "$(cat "$TMP/t.out")"
fi

# SIGINT on mpirun (Ctrl-C): mpirun stops reading the ranks' output, sends SIGCONT, then after
# odls_base_sigkill_timeout SIGTERM, then after as long again SIGKILL; rank 0 saves the
# checkpoint in between (it no longer blocks writing a report line).  The signal goes once the
# first report line is out (training runs), wherever that is.  The one time limit is mpirun's:
# 3 s here for a save that takes milliseconds (docs/scheduler.md).  env --default-signal: a
# background job would otherwise ignore SIGINT.
OMPI_MCA_odls_base_sigkill_timeout=3 timeout -s KILL 120 env --default-signal=INT mpirun -np 2 "$DNIC" $M4 --run \
    --no-progress $A --set train.epochs=200000 --checkpoint "$TMP/ci.st" > "$TMP/ci.out" 2> "$TMP/ci.err" &
pid=$!
for _ in $(seq 600); do
    grep -q '^Iter' "$TMP/ci.out" 2> /dev/null && break
    sleep 0.1
done
kill -INT "$(pgrep -P $pid)" 2> /dev/null
wait $pid
step=$(sed -n 's/^dnic: interrupted after step \([0-9]*\); the checkpoint is in .*ci.st$/\1/p' "$TMP/ci.err")
if [ -n "$step" ] && [ -s "$TMP/ci.st" ]; then
    E=$((step / 8 + 1)) # whole epochs of 8 steps past the checkpoint
    seq_run $M4 $A --set train.epochs=$E --resume "$TMP/ci.st" --save-weights "$TMP/cires.st" > /dev/null 2>&1
    seq_run $M4 $A --set train.epochs=$E --save-weights "$TMP/cifull.st" > /dev/null 2>&1
    cmp -s "$TMP/cifull.st" "$TMP/cires.st" && ok "SIGINT on mpirun saves a checkpoint (step $step) that finishes the same run" ||
        not_ok "SIGINT on mpirun saves a checkpoint that finishes the same run" "step $step, $E epochs"
else
    not_ok "SIGINT on mpirun saves a checkpoint and says so" "$(cat "$TMP/ci.err")"
fi

# data parallelism: --replicas 2 splits each batch over two copies of every stage and sums
# their gradients in replica order.  The numbers do not depend on the ranks a replica takes
# (1 or 2 here), and are one process's up to the order of the sums over the batch (float64:
# within 1e-12 after 240 Adam steps; docs/scheduler.md)
RA="$A --set train.grad=mean --set train.epochs=30"
seq_run $M4 $RA --save-weights "$TMP/rs.st" > "$TMP/rs.out" 2>&1
mpi 2 $M4 $RA --replicas 2 --save-weights "$TMP/r21.st" > "$TMP/r21.out" 2>&1
mpi 4 $M4 $RA --replicas 2 --save-weights "$TMP/r22.st" > "$TMP/r22.out" 2>&1
grep -q 'mpi: 4 stages on 2 ranks (0 1-3) x 2 replicas' "$TMP/r22.out" &&
    same "2 replicas of 2 ranks = 2 replicas of 1 rank, bit for bit" r21 r22 ||
    not_ok "2 replicas of 2 ranks" "$(tail -3 "$TMP/r22.out")"
close=$(/usr/bin/python3 tests/e2e/st_close.py "$TMP/rs.st" "$TMP/r21.st" 1e-12) &&
    ok "2 replicas = one process up to summation order: $close" || not_ok "2 replicas = one process up to summation order" "$close"
diff <(grep '^Iter' "$TMP/rs.out") <(grep '^Iter' "$TMP/r21.out") > /dev/null &&
    ok "2 replicas print one process's report lines (to the 12 digits shown)" ||
    not_ok "2 replicas print one process's report lines" "$(diff <(grep '^Iter' "$TMP/rs.out") <(grep '^Iter' "$TMP/r21.out"))"
# a recurrent model: gradients summed over a chunk's steps, then over the replicas
mpi 2 $MR --replicas 2 --save-weights "$TMP/rr.st" > "$TMP/rr.out" 2>&1
close=$(/usr/bin/python3 tests/e2e/st_close.py "$TMP/sr.st" "$TMP/rr.st" 1e-12) &&
    ok "recurrent graph, 2 replicas = one process up to summation order: $close" ||
    not_ok "recurrent graph, 2 replicas" "$close" "$(tail -3 "$TMP/rr.out")"
# checkpoints of replicas hold every replica's temporaries; they resume with the same replicas
# on any number of ranks each, and an interrupt stops every replica at the same step
mpi 4 $M4 $RA --set train.epochs=12 --replicas 2 --checkpoint "$TMP/rc.st" --checkpoint-every 5 > "$TMP/rc.out" 2>&1
mpi 2 $M4 $RA --replicas 2 --resume "$TMP/rc.st" --save-weights "$TMP/rcr.st" > "$TMP/rcr.out" 2>&1
cmp -s "$TMP/r21.st" "$TMP/rcr.st" && ok "a checkpoint of 2 replicas of 2 ranks resumed on 2 replicas of 1 finishes the same run" ||
    not_ok "a checkpoint of 2 replicas resumed" "$(tail -3 "$TMP/rc.out" "$TMP/rcr.out")"
DNIC_TEST_INTERRUPT_AT=77 mpi 4 $M4 $RA --replicas 2 --checkpoint "$TMP/ri.st" > "$TMP/ri.out" 2>&1
rc=$?
mpi 2 $M4 $RA --replicas 2 --resume "$TMP/ri.st" --save-weights "$TMP/rir.st" > /dev/null 2>&1
[ $rc -eq 130 ] && grep -q "dnic: interrupted after step .*; the checkpoint is in $TMP/ri.st" "$TMP/ri.out" &&
    cmp -s "$TMP/r21.st" "$TMP/rir.st" && ok "an interrupt stops 2 replicas at one step; resumed, the same run" ||
    not_ok "an interrupt of 2 replicas" "exit $rc" "$(cat "$TMP/ri.out")"
seq_run $M4 $RA --resume "$TMP/ri.st" > "$TMP/rione.out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "ri.st: the checkpoint belongs to another model, or was made with another number of --replicas" "$TMP/rione.out" &&
    ok "a checkpoint of 2 replicas resumed in one process is refused, naming --replicas" ||
    not_ok "a checkpoint of 2 replicas resumed in one process" "exit $rc" "$(cat "$TMP/rione.out")"
mpi 3 $M4 --replicas 2 > "$TMP/re1.out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q 'error: --replicas 2: this job has 3 ranks, not a multiple of 2' "$TMP/re1.out" &&
    ok "replicas that do not divide the ranks are refused" || not_ok "replicas that do not divide the ranks" "exit $rc" "$(cat "$TMP/re1.out")"
seq_run $M4 --replicas 2 > "$TMP/re2.out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q 'error: --replicas 2: the replicas are processes of an MPI job: mpirun -np 2 dnic' "$TMP/re2.out" &&
    ok "--replicas outside mpirun is refused" || not_ok "--replicas outside mpirun" "exit $rc" "$(cat "$TMP/re2.out")"

# failures end the whole job with one message naming the rank
DNIC_TEST_KILL=1:40 mpi 3 $M4 --set train.epochs=2000 > "$TMP/k.out" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q 'rank 1 .*exited on signal 9' "$TMP/k.out" && ok "a killed rank ends the job, named (exit $rc)" ||
    not_ok "a killed rank ends the job" "exit $rc" "$(cat "$TMP/k.out")"
DNIC_MPI_TIMEOUT=5 DNIC_TEST_HANG=1:40 mpi 2 $M4 --set train.epochs=2000 > "$TMP/h.out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q '^dnic: rank 0: no message from rank 1 for 5 s (waiting for h1.grad of step 41); stopping the job$' "$TMP/h.out" &&
    ok "a rank that never answers stops the job after DNIC_MPI_TIMEOUT, named" || not_ok "a silent rank stops the job" "exit $rc" "$(cat "$TMP/h.out")"
mkdir -p "$TMP/a" "$TMP/b"
printf 'a,b,c,d,y\n' > "$TMP/a/tiny.csv"
for i in $(seq 1 20); do echo "0.$i,0.$((i % 3)),0.$((i % 5)),0.$((i % 7)),$((i % 3))" >> "$TMP/a/tiny.csv"; done
cat > "$TMP/a/m.dni" << 'DNI'
model tiny
data csv { train = "tiny.csv"  label = 4  one_hot = 3  inputs = 4  labels = 3 }
layer h1 = dense(input, 8) { activation = tanh }
layer out = dense(h1, 3)   { activation = softmax }
sg h1 { }
loss softmax_cross_entropy(out, labels)
train { batch = 2  lr = 0.1  epochs = 3 }
DNI
cp "$TMP/a/m.dni" "$TMP/b/m.dni" # no data next to this one
cat > "$TMP/each.sh" << EOF
#!/bin/sh
if [ "\$OMPI_COMM_WORLD_RANK" = 1 ]; then d=b; else d=a; fi
exec "$DNIC" "$TMP/\$d/m.dni" --run --no-progress
EOF
chmod +x "$TMP/each.sh"
timeout -s KILL 120 mpirun -np 2 "$TMP/each.sh" > "$TMP/d.out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -qF "dnic: rank 1: $TMP/b/m.dni:2:20: error: cannot open data file '$TMP/b/tiny.csv'" "$TMP/d.out" &&
    ok "a data file missing on rank 1 is named with the rank, exit 1" || not_ok "a data file missing on one rank" "exit $rc" "$(cat "$TMP/d.out")"

# a checkpoint that is corrupted on one rank's disk: that rank names it and stops the job
cp "$TMP/cs.st" "$TMP/bad.st"
printf 'XXXX' | dd of="$TMP/bad.st" bs=1 seek=20000 conv=notrunc 2> /dev/null
cat > "$TMP/resume.sh" << EOF
#!/bin/sh
if [ "\$OMPI_COMM_WORLD_RANK" = 2 ]; then c=bad; else c=cs; fi
exec "$DNIC" $M4 --run --no-progress $A --set train.epochs=30 --resume "$TMP/\$c.st"
EOF
chmod +x "$TMP/resume.sh"
timeout -s KILL 120 mpirun -np 3 "$TMP/resume.sh" > "$TMP/rb.out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -qF "dnic: rank 2: cannot start training: $TMP/bad.st: the checkpoint is corrupted" "$TMP/rb.out" &&
    ok "a checkpoint corrupted on rank 2 is named with the rank, exit 1" || not_ok "a corrupted checkpoint on one rank" "exit $rc" "$(cat "$TMP/rb.out")"

# a stage that diverges stops every rank; rank 0 reports the sequential run's step
N="--set train.lr=1000 --set layer.h1.activation=linear --set layer.h2.activation=linear --set layer.h3.activation=linear"
N="$N --set layer.h4.activation=linear --set layer.out.activation=linear"
seq_run $M4 $N > "$TMP/ns.out" 2>&1
mpi 4 $M4 $N > "$TMP/nm.out" 2>&1
rc=$?
step_of() { grep -o 'diverged at step [0-9]* (epoch [0-9]*)' "$1"; }
[ $rc -eq 1 ] && [ -n "$(step_of "$TMP/ns.out")" ] && [ "$(step_of "$TMP/ns.out")" = "$(step_of "$TMP/nm.out")" ] &&
    ok "a divergence on 4 ranks stops the job at the sequential run's step" ||
    not_ok "a divergence on 4 ranks" "exit $rc" "$(cat "$TMP/nm.out")"

# test sets are scored at gates; train.patience stops every rank before the end, with backward
# messages of 16 KiB (beyond Open MPI's eager limit) still on their way
mkdir -p "$TMP/v"
cp "$TMP/a/tiny.csv" "$TMP/v/train.csv"
cp "$TMP/a/tiny.csv" "$TMP/v/test.csv"
cat > "$TMP/v/m.dni" << 'DNI'
model stops
data csv { train = "train.csv"  test = "test.csv"  label = 4  one_hot = 3  inputs = 4  labels = 3 }
layer h1 = dense(input, 512) { activation = tanh }
layer h2 = dense(h1, 512) { activation = tanh }
layer out = dense(h2, 3)   { activation = softmax }
sg h1 { }
sg h2 { }
loss softmax_cross_entropy(out, labels)
train { batch = 4  lr = 0.5  epochs = 40  lag = 2  patience = 1 }
DNI
seq_run "$TMP/v/m.dni" --save-weights "$TMP/vs.st" > "$TMP/vs.out" 2>&1
mpi 3 "$TMP/v/m.dni" --save-weights "$TMP/vm.st" > "$TMP/vm.out" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q 'stopped early after step' "$TMP/vs.out" && grep -q 'Test loss' "$TMP/vs.out" &&
    same "patience on 3 ranks stops where the sequential run does, same test scores and weights" vs vm ||
    not_ok "patience on 3 ranks" "exit $rc" "$(cat "$TMP/vs.out" "$TMP/vm.out")"

# mistakes
mpi 5 $M4 > "$TMP/e1.out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q 'error: this job has 5 ranks, but the model has 4 stages: run it on at most 4' "$TMP/e1.out" &&
    ok "more ranks than stages is refused" || not_ok "more ranks than stages is refused" "exit $rc" "$(cat "$TMP/e1.out")"
mpi 2 $M4 --placement 1,2 > "$TMP/e2.out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q 'error: --placement 1,2 places 3 stages on 2 ranks; this job has 2 ranks and the model 4 stages' "$TMP/e2.out" &&
    ok "a placement that does not fit is refused" || not_ok "a placement that does not fit is refused" "exit $rc" "$(cat "$TMP/e2.out")"
mpi 2 $M4 --schedule pipeline > "$TMP/e3.out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q 'error: --schedule pipeline: under mpirun with 2 ranks the stages run on the ranks' "$TMP/e3.out" &&
    ok "--schedule pipeline under mpirun is refused" || not_ok "--schedule pipeline under mpirun is refused" "exit $rc" "$(cat "$TMP/e3.out")"
finish
