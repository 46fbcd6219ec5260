# DNIC_PROG_LLVM: find llvm-config for LLVM 19, gate its version and take only the
# components dnic uses.  Sets LLVM_CONFIG, LLVM_CFLAGS, LLVM_LDFLAGS, LLVM_LIBS.
AC_DEFUN([DNIC_PROG_LLVM], [
  AC_ARG_WITH([llvm-config],
    [AS_HELP_STRING([--with-llvm-config=PATH], [llvm-config of LLVM 19 (default: llvm-config-19)])],
    [LLVM_CONFIG=$withval], [])
  AS_IF([test -z "$LLVM_CONFIG"], [AC_PATH_PROGS([LLVM_CONFIG], [llvm-config-19])])
  AS_IF([test -z "$LLVM_CONFIG" || test ! -x "$LLVM_CONFIG"],
    [AC_MSG_ERROR([LLVM 19 not found: install the Debian package llvm-19-dev (or pass --with-llvm-config=PATH)])])
  AC_MSG_CHECKING([LLVM version])
  dnic_llvm_version=`$LLVM_CONFIG --version`
  AC_MSG_RESULT([$dnic_llvm_version])
  AS_CASE([$dnic_llvm_version],
    [19.*], [],
    [AC_MSG_ERROR([LLVM $dnic_llvm_version found at $LLVM_CONFIG, but dnic needs LLVM 19: install the Debian package llvm-19-dev])])
  LLVM_CFLAGS=`$LLVM_CONFIG --cflags`
  LLVM_LDFLAGS=`$LLVM_CONFIG --ldflags`
  LLVM_LIBS=`$LLVM_CONFIG --libs core orcjit native passes target analysis`
  AC_SUBST([LLVM_CONFIG])
  AC_SUBST([LLVM_CFLAGS])
  AC_SUBST([LLVM_LDFLAGS])
  AC_SUBST([LLVM_LIBS])
])
