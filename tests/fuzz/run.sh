#!/bin/sh
# Builds the front-end fuzzer (clang + libFuzzer, ASan, UBSan) and runs it for a bounded time.
# usage: tests/fuzz/run.sh [SECONDS=60] [BUILD_DIR]   (or DNIC_BUILD=BUILD_DIR; default: the
# source tree).  BUILD_DIR is where ./configure && make ran; grammar/parser.c and lexer.c are
# taken from there (made with `make` or bison/flex if missing).  DNIC_FUZZ_ARGS: extra
# libFuzzer flags; DNIC_FUZZ_CORPUS: a corpus directory to grow and keep (default: a temporary
# one).  Prints `fuzz: N runs, no crash` and exits 0, or the crashing input's path and exits 1.
set -eu

secs=${1:-60}
case $secs in '' | *[!0-9]*) echo "run.sh: SECONDS must be a whole number, not '$secs'" >&2; exit 2 ;; esac
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
build=${2:-${DNIC_BUILD:-$srcdir}}
build=$(cd "$build" && pwd)
CC=${FUZZ_CC:-clang}

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
fuzzer=$work/fuzz_frontend
# the front end's C files, as Makefile.am lists them for libdnicfe.a (the grammar comes from $gen)
fe_sources=$(sed -n '/^libdnicfe_a_SOURCES/,/^$/p' "$srcdir/Makefile.am" | grep -o 'compiler/[a-z_]*\.c' |
    sed "s|^|$srcdir/|" | tr '\n' ' ')
echo "run.sh: building $fuzzer (grammar from $gen)" >&2
# shellcheck disable=SC2086
$CC -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$srcdir/include" -I"$srcdir/compiler" -I"$gen" -I"$srcdir/grammar" \
    "$srcdir/tests/fuzz/fuzz_frontend.c" \
    "$gen/parser.c" "$gen/lexer.c" \
    $fe_sources -lm -o "$fuzzer"

# ---- seed corpus: the examples, the test models and the known crashers ----------------------
corpus=${DNIC_FUZZ_CORPUS:-$work/corpus}
mkdir -p "$work/seeds" "$corpus" "$work/artifacts"
corpus=$(cd "$corpus" && pwd)
for f in "$srcdir"/examples/*.dni "$srcdir"/tests/dni/pass/*.dni "$srcdir"/tests/dni/fail/*.dni \
         "$srcdir"/tests/fuzz/regressions/*; do
    [ -f "$f" ] || continue
    n=$(basename "$(dirname "$f")")_$(basename "$f")
    # a test's `# args: --set K=V` becomes a `#set K=V` line, which the harness applies
    { awk '/^# args:/ { for (i = 3; i < NF; i++) if ($i == "--set") print "#set " $(i + 1) }' "$f"
      cat "$f"; } >"$work/seeds/$n"
done
# the first example again with overrides, so that `#set ` lines are in the corpus from the start
for f in "$srcdir"/examples/*.dni; do
    [ -f "$f" ] || continue
    { printf '#set train.batch=20\n#set sg.h1.input=output + labels\n#set layer.out.activation=tanh\n'
      cat "$f"; } >"$work/seeds/set_$(basename "$f")"
    break
done

# ---- run --------------------------------------------------------------------------------------
log=$work/fuzz.log
echo "run.sh: fuzzing for ${secs}s (log: $log)" >&2
rc=0
# from the source tree, so the tests' data paths (tests/dni/data/...) resolve; nothing is
# written there: the corpus and the artifacts have absolute paths
cd "$srcdir"
# shellcheck disable=SC2086
"$fuzzer" -max_len=4096 -timeout=10 -max_total_time="$secs" -print_final_stats=1 \
    -dict="$srcdir/tests/fuzz/dict.txt" -artifact_prefix="$work/artifacts/" \
    ${DNIC_FUZZ_ARGS:-} "$corpus" "$work/seeds" >"$log" 2>&1 || rc=$?

runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
cov=$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -n 1 | sed 's/.*\(cov: [0-9]* ft: [0-9]*\).*/\1/')
artifact=$(find "$work/artifacts" -type f | head -n 1)
if [ $rc -ne 0 ] || [ -n "$artifact" ]; then
    keep=yes
    tail -n 60 "$log" >&2
    echo "fuzz: FAILED (libFuzzer exit $rc) after ${runs:-?} runs" >&2
    if [ -n "$artifact" ]; then
        echo "crashing input: $artifact"
        echo "reproduce: cd $srcdir && $fuzzer $artifact"
    else
        echo "no crashing input was saved; see $log"
    fi
    exit 1
fi
[ -n "$cov" ] && echo "fuzz: $cov, corpus $(find "$corpus" -type f | wc -l) inputs"
echo "fuzz: ${runs:-0} runs, no crash"
