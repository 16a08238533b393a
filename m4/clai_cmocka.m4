# clai_cmocka.m4 - libclai's configure check for cmocka, the test framework.          -*- Autoconf -*-
#
# CLAI_CHECK_CMOCKA
# Requires cmocka 1.1 or later (pkg-config module cmocka), which the tests of make check use.
# Substitutes CMOCKA_CFLAGS and CMOCKA_LIBS; stops configure with the Debian package to install when it
# is missing.
AC_DEFUN([CLAI_CHECK_CMOCKA], [
  AC_REQUIRE([PKG_PROG_PKG_CONFIG])
  PKG_CHECK_MODULES([CMOCKA], [cmocka >= 1.1], [],
    [AC_MSG_ERROR([cmocka 1.1 or later (for make check) was not found: install Debian's libcmocka-dev (apt-get install libcmocka-dev)])])
])
