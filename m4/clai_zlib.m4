# clai_zlib.m4 - libclai's configure check for zlib.                                  -*- Autoconf -*-
#
# CLAI_CHECK_ZLIB
# Requires zlib (pkg-config module zlib): the Fashion-MNIST trainer (clai train) reads gzip'd data.
# Substitutes ZLIB_CFLAGS and ZLIB_LIBS; stops configure with the Debian package to install when it is
# missing.
AC_DEFUN([CLAI_CHECK_ZLIB], [
  AC_REQUIRE([PKG_PROG_PKG_CONFIG])
  PKG_CHECK_MODULES([ZLIB], [zlib], [],
    [AC_MSG_ERROR([zlib (the Fashion-MNIST trainer reads gzip'd data) was not found: install Debian's zlib1g-dev (apt-get install zlib1g-dev)])])
])
