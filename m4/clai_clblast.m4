# clai_clblast.m4 - libclai's configure check for the optional CLBlast GEMM backend.  -*- Autoconf -*-
#
# CLAI_CHECK_CLBLAST
# Adds --with-clblast=check|yes|no (default check). With check, CLBlast (pkg-config module clblast) is
# used when it is found; with yes, configure stops when it is not, naming the Debian package; with no, it
# is not looked for. When used: defines HAVE_CLBLAST in config.h and substitutes CLBLAST_CFLAGS and
# CLBLAST_LIBS. Always: the automake conditional HAVE_CLBLAST, and have_clblast=yes|no for the summary.
AC_DEFUN([CLAI_CHECK_CLBLAST], [
  AC_REQUIRE([PKG_PROG_PKG_CONFIG])
  AC_ARG_WITH([clblast],
    [AS_HELP_STRING([--with-clblast=check|yes|no], [use CLBlast as an optional GEMM backend @<:@default=check@:>@])],
    [], [with_clblast=check])
  AS_CASE([$with_clblast], [check|yes|no], [],
    [AC_MSG_ERROR([--with-clblast=$with_clblast: expected check, yes or no])])
  have_clblast=no
  AS_IF([test "x$with_clblast" != xno],
    [PKG_CHECK_MODULES([CLBLAST], [clblast], [have_clblast=yes],
      [AS_IF([test "x$with_clblast" = xyes],
        [AC_MSG_ERROR([--with-clblast=yes but CLBlast was not found: install Debian's libclblast-dev (apt-get install libclblast-dev)])])])])
  AS_IF([test "x$have_clblast" = xyes], [AC_DEFINE([HAVE_CLBLAST], [1], [CLBlast is available])])
  AM_CONDITIONAL([HAVE_CLBLAST], [test "x$have_clblast" = xyes])
])
