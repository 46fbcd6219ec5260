#!/bin/sh
# Builds dnic's fuzzers (clang + libFuzzer, ASan, UBSan) and runs each for a bounded time or
# a number of executions.  The targets:
#     frontend    the .dni parser, checker and IR builder, with `#set K=V` overrides (fuzz_frontend.c)
#     data        the IDX and CSV loaders, plain and gzip (fuzz_data.c)
#     weights     safetensors files, and the weights reader of emitted objects (fuzz_weights.c)
#     checkpoint  resuming training from a checkpoint (fuzz_checkpoint.c)
#     cache       the object cache's entries (fuzz_cache.c)
#     datacache   the data cache's entries, through the IDX loader (fuzz_data_cache.c)
# usage: tests/fuzz/run.sh [--long] [SECONDS=60] [BUILD_DIR]
#   SECONDS     the front end's time; each loader gets DNIC_FUZZ_LOADER_SECONDS (default 15), so the
#               default run takes about 60 + 5 x 15 s plus the build (CI runs it so)
#   --long      every target until DNIC_FUZZ_RUNS executions (default 1000000), no time limit: the
#               figures in docs/files.md ("What dnic promises") come from this
#   BUILD_DIR   where ./configure && make ran (or DNIC_BUILD); grammar/parser.c and lexer.c come
#               from there (made with `make` or bison/flex if missing).  Default: the source tree.
# DNIC_FUZZ_ONLY: the targets to run ("weights cache"); DNIC_FUZZ_ARGS: extra libFuzzer flags;
# DNIC_FUZZ_CORPUS: a directory to grow and keep corpora in (one subdirectory per target;
# default: a temporary one).  Prints one line per target, `fuzz TARGET: N runs (E/s, peak M MB),
# cov: C ft: F, corpus K inputs, no crash`, and exits 0, or the crashing input's path and exits 1.
# Every file in tests/fuzz/regressions/TARGET/ (the front end's: regressions/*) is a seed: the
# crashes found so far, run again each time.
set -eu

long=no
if [ "${1:-}" = --long ]; then long=yes; shift; fi
secs=${1:-60}
case $secs in '' | *[!0-9]*) echo "run.sh: SECONDS must be a whole number, not '$secs'" >&2; exit 2 ;; esac
loader_secs=${DNIC_FUZZ_LOADER_SECONDS:-15}
runs=${DNIC_FUZZ_RUNS:-1000000}
only=${DNIC_FUZZ_ONLY:-frontend data weights checkpoint cache datacache}
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
build=${2:-${DNIC_BUILD:-$srcdir}}
build=$(cd "$build" && pwd)
CC=${FUZZ_CC:-clang}
LLVM_CONFIG=${LLVM_CONFIG:-llvm-config-19}

work=$(mktemp -d "${TMPDIR:-/tmp}/dnic-fuzz.XXXXXX")
keep=no
cleanup() { if [ $keep = no ]; then rm -rf "$work"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the generated grammar sources ----------------------------------------------------------
gen=
if [ -f "$build/Makefile" ]; then
    make -s -C "$build" grammar/parser.h grammar/parser.c grammar/lexer.c >&2
fi
for d in "$build/grammar" "$srcdir/grammar"; do
    if [ -f "$d/parser.c" ] && [ -f "$d/parser.h" ] && [ -f "$d/lexer.c" ]; then
        gen=$d
        break
    fi
done
if [ -z "$gen" ]; then
    # no build tree made them: generate them here, as the Makefile would
    gen=$work/grammar
    mkdir -p "$gen"
    bison -d -Wno-yacc -o "$gen/parser.c" "$srcdir/grammar/parser.y"
    flex -o "$gen/lexer.c" "$srcdir/grammar/lexer.l"
fi

# ---- build ----------------------------------------------------------------------------------
FLAGS="-std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined
    -fno-sanitize-recover=undefined -I$srcdir/include -I$srcdir/compiler -I$srcdir/runtime -I$gen -I$srcdir/grammar"
# the C files of a library, as Makefile.am lists them
sources() { sed -n "/^$1_SOURCES/,/^\$/p" "$srcdir/Makefile.am" | grep -o "$2/[a-z_]*\\.c" | sed "s|^|$srcdir/|" | tr '\n' ' '; }
fe_sources=$(sources libdnicfe_a compiler)
rt_sources=$(sources libdnic_a runtime)
# libdeflate, as configure uses it when it is there; zlib always
zlibs=-lz
if pkg-config --exists libdeflate 2> /dev/null; then
    FLAGS="$FLAGS -DDNIC_HAVE_LIBDEFLATE=1 $(pkg-config --cflags libdeflate)"
    zlibs="-lz $(pkg-config --libs libdeflate)"
fi
mkdir -p "$work/rt"
echo "run.sh: building the fuzzers in $work (grammar from $gen)" >&2
# the runtime once, for the loaders
rt_objs=
for s in $rt_sources; do
    o=$work/rt/$(basename "$s" .c).o
    # shellcheck disable=SC2086
    $CC $FLAGS -fsanitize=fuzzer-no-link -c "$s" -o "$o"
    rt_objs="$rt_objs $o"
done
want() { case " $only " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
# shellcheck disable=SC2086
{
    want frontend && $CC $FLAGS -fsanitize=fuzzer "$srcdir/tests/fuzz/fuzz_frontend.c" "$gen/parser.c" "$gen/lexer.c" \
        $fe_sources -lm -o "$work/fuzz_frontend"
    want data && $CC $FLAGS -fsanitize=fuzzer "$srcdir/tests/fuzz/fuzz_data.c" $rt_objs $zlibs -lm -lpthread -o "$work/fuzz_data"
    want weights && $CC $FLAGS -fsanitize=fuzzer "$srcdir/tests/fuzz/fuzz_weights.c" $rt_objs $zlibs -lm -lpthread \
        -o "$work/fuzz_weights"
    want checkpoint && $CC $FLAGS -fsanitize=fuzzer "$srcdir/tests/fuzz/fuzz_checkpoint.c" $rt_objs $zlibs -lm -lpthread \
        -o "$work/fuzz_checkpoint"
    want cache && $CC $FLAGS $($LLVM_CONFIG --cflags) -fsanitize=fuzzer "$srcdir/tests/fuzz/fuzz_cache.c" \
        "$srcdir/compiler/jit_cache.c" $rt_objs $($LLVM_CONFIG --ldflags --libs core) $zlibs -lm -lpthread -o "$work/fuzz_cache"
    want datacache && $CC $FLAGS -fsanitize=fuzzer "$srcdir/tests/fuzz/fuzz_data_cache.c" $rt_objs $zlibs -lm -lpthread \
        -o "$work/fuzz_datacache"
    true
}

# ---- seed corpora -----------------------------------------------------------------------------
corpora=${DNIC_FUZZ_CORPUS:-$work/corpus}
mkdir -p "$corpora"
corpora=$(cd "$corpora" && pwd)
for t in $only; do mkdir -p "$work/seeds/$t" "$corpora/$t" "$work/artifacts/$t"; done
# the front end: the examples, the test models and the known crashers
if want frontend; then
    for f in "$srcdir"/examples/*.dni "$srcdir"/tests/dni/pass/*.dni "$srcdir"/tests/dni/fail/*.dni \
             "$srcdir"/tests/fuzz/regressions/*; do
        [ -f "$f" ] || continue
        n=$(basename "$(dirname "$f")")_$(basename "$f")
        # a test's `# args: --set K=V` becomes a `#set K=V` line, which the harness applies
        { awk '/^# args:/ { for (i = 3; i < NF; i++) if ($i == "--set") print "#set " $(i + 1) }' "$f"
          cat "$f"; } >"$work/seeds/frontend/$n"
    done
    # the first example again with overrides, so that `#set ` lines are in the corpus from the start
    for f in "$srcdir"/examples/*.dni; do
        [ -f "$f" ] || continue
        { printf '#set train.batch=20\n#set sg.h1.input=output + labels\n#set layer.out.activation=tanh\n'
          cat "$f"; } >"$work/seeds/frontend/set_$(basename "$f")"
        break
    done
fi
# the data loaders: the test data behind a few option bytes (fuzz_data.c), plain and gzipped
if want data; then
    for f in "$srcdir"/tests/dni/data/*.idx "$srcdir"/tests/dni/data/*.csv; do
        b=$(basename "$f")
        for ctl in '\000' '\005' '\032' '\110'; do
            { printf "$ctl\\000\\000"; cat "$f"; } >"$work/seeds/data/$b.$(printf %s "$ctl" | tr -d '\\')"
            { printf "$ctl\\000\\000"; gzip -c < "$f"; } >"$work/seeds/data/$b.gz.$(printf %s "$ctl" | tr -d '\\')"
        done
    done
    # an images + labels pair, split where the labels begin
    img=$srcdir/tests/dni/data/tiny-images.idx lab=$srcdir/tests/dni/data/tiny-labels.idx
    n=$(wc -c < "$img")
    { printf "\\000\\$(printf %03o $((n % 256)))\\$(printf %03o $((n / 256)))"; cat "$img" "$lab"; } >"$work/seeds/data/pair"
fi
# the other loaders make their own seeds (LLVMFuzzerInitialize, with DNIC_FUZZ_SEEDS)
for t in weights checkpoint cache datacache; do
    want $t || continue
    DNIC_FUZZ_SEEDS=$work/seeds/$t "$work/fuzz_$t" -runs=0 >/dev/null 2>&1 || { echo "run.sh: fuzz_$t cannot make its seeds" >&2; exit 1; }
done
for t in data weights checkpoint cache datacache; do
    want $t || continue
    for f in "$srcdir"/tests/fuzz/regressions/$t/*; do
        [ -f "$f" ] && cp "$f" "$work/seeds/$t/regression_$(basename "$f")"
    done
done

# ---- run --------------------------------------------------------------------------------------
# from the source tree, so the tests' data paths (tests/dni/data/...) resolve; nothing is
# written there: the corpus and the artifacts have absolute paths
cd "$srcdir"
status=0
for t in $only; do
    log=$work/$t.log
    case $t in
    frontend) limits="-max_len=4096 -dict=$srcdir/tests/fuzz/dict.txt"; time=$secs ;;
    *) limits="-max_len=16384"; time=$loader_secs ;;
    esac
    if [ $long = yes ]; then budget="-runs=$runs"; else budget="-max_total_time=$time"; fi
    echo "run.sh: fuzzing $t ($budget; log: $log)" >&2
    rc=0
    # shellcheck disable=SC2086
    "$work/fuzz_$t" $limits $budget -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/$t/" ${DNIC_FUZZ_ARGS:-} "$corpora/$t" "$work/seeds/$t" >"$log" 2>&1 || rc=$?
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -n 1 | sed 's/.*\(cov: [0-9]* ft: [0-9]*\).*/\1/')
    artifact=$(find "$work/artifacts/$t" -type f | head -n 1)
    if [ $rc -ne 0 ] || [ -n "$artifact" ]; then
        keep=yes
        status=1
        tail -n 60 "$log" >&2
        echo "fuzz $t: FAILED (libFuzzer exit $rc) after ${n:-?} runs" >&2
        if [ -n "$artifact" ]; then
            echo "crashing input: $artifact"
            echo "reproduce: cd $srcdir && $work/fuzz_$t $artifact"
        else
            echo "no crashing input was saved; see $log"
        fi
        continue
    fi
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
    echo "fuzz $t: ${n:-0} runs (${speed:-?}/s, peak ${rss:-?} MB), ${cov:-cov: ?}, corpus $(find "$corpora/$t" -type f | wc -l) inputs, no crash"
done
exit $status
