# clai_sanitizers.m4 - libclai's --enable-sanitizers option.                          -*- Autoconf -*-
#
# CLAI_ENABLE_SANITIZERS
# Adds --enable-sanitizers (default no): builds and links everything with AddressSanitizer and
# UndefinedBehaviorSanitizer, any undefined behaviour aborting. When enabled, configure first checks that
# the compiler can link a program with these flags and stops, naming the Debian packages of the sanitizer
# runtimes, when it cannot. Substitutes SANITIZE_CFLAGS (empty when disabled); defines the automake
# conditional SANITIZERS.
AC_DEFUN([CLAI_ENABLE_SANITIZERS], [
  AC_REQUIRE([AC_PROG_CC])
  AC_ARG_ENABLE([sanitizers],
    [AS_HELP_STRING([--enable-sanitizers], [build with AddressSanitizer and UndefinedBehaviorSanitizer])],
    [], [enable_sanitizers=no])
  AS_CASE([$enable_sanitizers], [yes|no], [],
    [AC_MSG_ERROR([--enable-sanitizers=$enable_sanitizers: expected yes or no])])
  SANITIZE_CFLAGS=
  AS_IF([test "x$enable_sanitizers" = xyes], [
    SANITIZE_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
    AC_MSG_CHECKING([whether $CC links with $SANITIZE_CFLAGS])
    clai_save_CFLAGS=$CFLAGS
    clai_save_LDFLAGS=$LDFLAGS
    CFLAGS="$CFLAGS $SANITIZE_CFLAGS"
    LDFLAGS="$LDFLAGS $SANITIZE_CFLAGS"
    AC_LINK_IFELSE([AC_LANG_PROGRAM([], [])], [clai_sanitizers_link=yes], [clai_sanitizers_link=no])
    CFLAGS=$clai_save_CFLAGS
    LDFLAGS=$clai_save_LDFLAGS
    AC_MSG_RESULT([$clai_sanitizers_link])
    AS_IF([test "x$clai_sanitizers_link" = xno],
      [AC_MSG_ERROR([--enable-sanitizers: $CC cannot link a program with $SANITIZE_CFLAGS: install the sanitizer runtimes, Debian's libasan8 and libubsan1 for gcc 12 (apt-get install libasan8 libubsan1) or libclang-rt-14-dev for clang 14 (see config.log)])])
  ])
  AC_SUBST([SANITIZE_CFLAGS])
  AM_CONDITIONAL([SANITIZERS], [test "x$enable_sanitizers" = xyes])
])
