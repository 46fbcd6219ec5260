#!/bin/bash
# End to end: `make install prefix=DIR` into a temporary prefix (dnic.pc says DIR, the manual
# page renders, the docs and the bash completion are there and work), and the manual page and
# the completion name every option `dnic --help` lists.
. "${top_srcdir:-.}/tests/lib.sh"
: "${top_builddir:=.}"
: "${MAKE:=make}"
man=$top_srcdir/man/dnic.1
comp=$top_srcdir/completions/dnic.bash

# the options --help lists: the words starting with '-' before the help text of each line
opts=$("$DNIC" --help | sed -n 's/^  \(-[^ ,]*\)\(, \(--[^ ]*\)\)\{0,1\}.*/\1 \3/p' | tr ' ' '\n' | sed '/^$/d')
[ "$(printf '%s\n' "$opts" | wc -l)" -ge 30 ] && ok "--help lists the options ($(printf '%s\n' "$opts" | wc -l))" ||
    not_ok "--help lists the options" "$opts"
missing= missing_comp=
for o in $opts; do
    esc=$(printf '%s' "$o" | sed 's/-/\\-/g')
    grep -qF -- "\\fB$esc\\fR" "$man" || missing="$missing $o"
    grep -qE -- "(^|[ '])$o( |'|\$)" "$comp" || missing_comp="$missing_comp $o"
done
[ -z "$missing" ] && ok "the manual page describes every option of --help" ||
    not_ok "the manual page describes every option of --help" "missing from man/dnic.1:$missing"
[ -z "$missing_comp" ] && ok "the bash completion offers every option of --help" ||
    not_ok "the bash completion offers every option of --help" "missing from completions/dnic.bash:$missing_comp"

# ---- make install prefix=DIR ---------------------------------------------------------------
P=$TMP/p
if out=$(cd "$top_builddir" && env -u MAKEFLAGS -u MFLAGS -u DESTDIR $MAKE install prefix="$P" 2>&1); then
    ok "make install prefix=DIR"
else
    not_ok "make install prefix=DIR" "$(printf '%s\n' "$out" | tail -20)"
fi
# the build tree's dnic.pc back to the configured prefix
(cd "$top_builddir" && env -u MAKEFLAGS -u MFLAGS $MAKE -s dnic.pc > /dev/null 2>&1)

pc=$P/lib/pkgconfig/dnic.pc
if grep -qx "prefix=$P" "$pc" 2>/dev/null && grep -qx "libdir=$P/lib" "$pc" &&
    [ "$(PKG_CONFIG_PATH=$P/lib/pkgconfig pkg-config --cflags dnic 2>&1 | sed 's/ *$//')" = "-I$P/include -I$P/include/dnic" ]; then
    ok "dnic.pc names the prefix given to make install"
else not_ok "dnic.pc names the prefix given to make install" "$(cat "$pc" 2>&1)"; fi

page=$P/share/man/man1/dnic.1
if [ ! -f "$page" ]; then not_ok "the manual page is installed and renders" "no $page"
elif command -v groff > /dev/null 2>&1; then
    out=$(groff -man -Tutf8 -P-cbou -ww "$page" 2>&1 > "$TMP/man.txt")
    if [ -z "$out" ] && grep -q "EXIT STATUS" "$TMP/man.txt" && grep -q "DNIC_CACHE_DIR" "$TMP/man.txt"; then
        ok "the manual page is installed and renders"
    else not_ok "the manual page is installed and renders" "$out"; fi
else ok "the manual page is installed (# SKIP no groff to render it)"; fi

n=0
for f in README.md language.md semantics.md scheduler.md files.md embedding.md; do
    [ -s "$P/share/doc/dnic/$f" ] && n=$((n + 1))
done
[ $n -eq 6 ] && ok "the docs are installed under share/doc/dnic" ||
    not_ok "the docs are installed under share/doc/dnic" "$(ls -R "$P/share" 2>&1)"

bc=$P/share/bash-completion/completions/dnic
if out=$(bash -n "$bc" 2>&1); then ok "the bash completion is valid bash"
else not_ok "the bash completion is valid bash" "$out"; fi
# complete WORDS...: what the completion offers for the last word
complete_words() {
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _dnic; printf "%s\n" "${COMPREPLY[@]}"' \
        complete "$bc" "$@" 2>&1
}
got=$(complete_words dnic m.dni --se)
[ "$got" = "--set" ] && ok "the completion completes --se to --set" || not_ok "the completion completes --se to --set" "$got"
got=$(cd "$top_srcdir" && complete_words dnic examples/seed_dni.dni --set sg. | tr '\n' ' ')
[ "$got" = "sg.h1. sg.h2. " ] && ok "the completion offers the model's SG modules after --set sg." ||
    not_ok "the completion offers the model's SG modules after --set sg." "$got"
got=$(cd "$top_srcdir" && complete_words dnic examples/seed_dni.dni --set train.epo | tr '\n' ' ')
[ "$got" = "train.epochs= " ] && ok "the completion offers train keys after --set" ||
    not_ok "the completion offers train keys after --set" "$got"

if out=$(cd "$top_builddir" && env -u MAKEFLAGS -u MFLAGS -u DESTDIR $MAKE uninstall prefix="$P" 2>&1) &&
    [ -z "$(find "$P" -type f)" ]; then ok "make uninstall prefix=DIR removes every file"
else not_ok "make uninstall prefix=DIR removes every file" "$(find "$P" -type f)"; fi
(cd "$top_builddir" && env -u MAKEFLAGS -u MFLAGS $MAKE -s dnic.pc > /dev/null 2>&1)
finish
