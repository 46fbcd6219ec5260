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

  # Static linking (the default when LLVM's archives are installed): loading the 129 MB
  # libLLVM.so and relocating it costs a process about 45 MB of resident memory and tens of
  # milliseconds before main; a static link keeps only the code dnic calls, for the two
  # targets it links (X86 and AArch64).  See docs/benchmarks.md.
  AC_ARG_ENABLE([static-llvm],
    [AS_HELP_STRING([--disable-static-llvm], [link libLLVM.so (all of LLVM's targets) instead of LLVM's archives])],
    [], [enable_static_llvm=auto])
  dnic_llvm_libdir=`$LLVM_CONFIG --libdir`
  AS_IF([test "x$enable_static_llvm" != xno], [
    AS_IF([test -f "$dnic_llvm_libdir/libLLVMCore.a"], [
      AC_CHECK_LIB([zstd], [ZSTD_compress], [dnic_have_zstd=yes], [dnic_have_zstd=no])
      AS_IF([test "x$dnic_have_zstd" = xyes], [
        LLVM_LIBS="`$LLVM_CONFIG --link-static --libs core orcjit passes target analysis x86 aarch64` -lstdc++ -lzstd -lz -ldl -lrt"
        enable_static_llvm=yes
        AC_DEFINE([DNIC_STATIC_LLVM], [1], [Define to 1 if LLVM is linked from its archives (X86 and AArch64 only).])
      ], [
        AS_IF([test "x$enable_static_llvm" = xyes],
          [AC_MSG_ERROR([--enable-static-llvm needs libzstd: install the Debian package libzstd-dev])])
        enable_static_llvm=no
      ])
    ], [
      AS_IF([test "x$enable_static_llvm" = xyes],
        [AC_MSG_ERROR([--enable-static-llvm: no LLVM archives in $dnic_llvm_libdir (install llvm-19-dev)])])
      enable_static_llvm=no
    ])
  ])
  AC_MSG_CHECKING([whether to link LLVM statically])
  AC_MSG_RESULT([$enable_static_llvm])
  AC_SUBST([LLVM_CONFIG])
  AC_SUBST([LLVM_CFLAGS])
  AC_SUBST([LLVM_LDFLAGS])
  AC_SUBST([LLVM_LIBS])
])
