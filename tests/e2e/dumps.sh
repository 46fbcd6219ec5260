#!/bin/bash
# End to end: the stable text dumps match their reviewed goldens; --emit-llvm and -S write the
# optimised module and the assembly.
. "${top_srcdir:-.}/tests/lib.sh"
cd "$top_srcdir" || exit 1
golden() { # NAME FLAG MODEL
    if "$DNIC" "$3" "$2" > "$TMP/out" 2>&1 && diff -u "tests/e2e/golden/$1" "$TMP/out" > "$TMP/diff"; then ok "$2 $3 matches golden/$1"
    else not_ok "$2 $3 matches golden/$1" "$(head -40 "$TMP/diff")"; fi
}
golden seed_dni.ast --dump-ast examples/seed_dni.dni
golden seed_dni.ir --dump-ir examples/seed_dni.dni
golden seed_backprop.ir --dump-ir examples/seed_backprop.dni
golden seed_dni.dot --emit-dot examples/seed_dni.dni

"$DNIC" examples/seed_dni.dni --emit-llvm "$TMP/m.ll" -S "$TMP/m.s" --set train.dtype=float32 > /dev/null 2>&1
grep -q '^define void @dnic_block0(ptr' "$TMP/m.ll" && ok "--emit-llvm writes the module" || not_ok "--emit-llvm writes the module"
# 8 lanes (256 bits), or 16 on CPUs with full-width AVX-512 (embed.sh checks which CPU gets which)
grep -q 'fadd <8 x float>\|fadd <16 x float>' "$TMP/m.ll" && ok "float32 products use 8- or 16-wide vectors" ||
    not_ok "float32 products use 8- or 16-wide vectors"
grep -q 'fmul fast\|fadd fast\|contract' "$TMP/m.ll" && not_ok "no fast-math flags in generated code" || ok "no fast-math flags in generated code"
grep -q 'dnic_block0:' "$TMP/m.s" && ok "-S writes assembly" || not_ok "-S writes assembly"
"$DNIC" examples/seed_dni.dni --emit-llvm /nonexistent/dir/m.ll > "$TMP/e" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "cannot write '/nonexistent/dir/m.ll'" "$TMP/e" && ok "--emit-llvm to a bad path is an error" ||
    not_ok "--emit-llvm to a bad path is an error" "exit $rc" "$(cat "$TMP/e")"
finish
