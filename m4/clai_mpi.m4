# clai_mpi.m4 - libclai's configure check for the optional MPI (Open MPI) support.   -*- Autoconf -*-
#
# CLAI_CHECK_MPI
# Adds --with-mpi=check|yes|no (default check). MPI is Open MPI from Debian's libopenmpi-dev, looked for
# first through pkg-config (module ompi-c), then through its compiler wrapper mpicc (--showme:compile and
# --showme:link); MPI_CFLAGS and MPI_LIBS given on the command line are used as they are. Whichever flags
# are found must compile and link a call to MPI_Init. With check, MPI is used when that works; with yes,
# configure stops when it does not, naming the Debian package; with no, it is not looked for.
# When used: defines HAVE_MPI in config.h. Always: substitutes MPI_CFLAGS and MPI_LIBS (empty without
# MPI), defines the automake conditional HAVE_MPI, and sets have_mpi=yes|no for the summary.
AC_DEFUN([CLAI_CHECK_MPI], [
  AC_REQUIRE([PKG_PROG_PKG_CONFIG])
  AC_REQUIRE([AC_PROG_CC])
  AC_ARG_WITH([mpi],
    [AS_HELP_STRING([--with-mpi=check|yes|no], [use MPI (Open MPI) for multi-process training @<:@default=check@:>@])],
    [], [with_mpi=check])
  AS_CASE([$with_mpi], [check|yes|no], [],
    [AC_MSG_ERROR([--with-mpi=$with_mpi: expected check, yes or no])])
  AC_ARG_VAR([MPICC], [Open MPI's compiler wrapper, asked for MPI's flags when pkg-config has no ompi-c])
  have_mpi=no
  AS_IF([test "x$with_mpi" != xno], [
    clai_mpi_found=no
    PKG_CHECK_MODULES([MPI], [ompi-c], [clai_mpi_found=yes], [clai_mpi_found=no])
    AS_IF([test "x$clai_mpi_found" = xno], [
      AC_PATH_PROGS([MPICC], [mpicc], [])
      AS_IF([test -n "$MPICC"], [
        AC_MSG_CHECKING([for MPI's flags from $MPICC])
        AS_IF([clai_mpi_cflags=`$MPICC --showme:compile 2>&AS_MESSAGE_LOG_FD` &&
               clai_mpi_libs=`$MPICC --showme:link 2>&AS_MESSAGE_LOG_FD`],
          [MPI_CFLAGS=$clai_mpi_cflags
           MPI_LIBS=$clai_mpi_libs
           clai_mpi_found=yes
           AC_MSG_RESULT([$MPI_CFLAGS $MPI_LIBS])],
          [AC_MSG_RESULT([none (not Open MPI's mpicc?)])])
      ])
    ])
    AS_IF([test "x$clai_mpi_found" = xyes], [
      AC_MSG_CHECKING([whether a program calling MPI_Init links with MPI_CFLAGS and MPI_LIBS])
      clai_save_CPPFLAGS=$CPPFLAGS
      clai_save_LIBS=$LIBS
      CPPFLAGS="$CPPFLAGS $MPI_CFLAGS"
      LIBS="$MPI_LIBS $LIBS"
      AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <mpi.h>]], [[return MPI_Init(0, 0);]])],
        [have_mpi=yes], [have_mpi=no])
      CPPFLAGS=$clai_save_CPPFLAGS
      LIBS=$clai_save_LIBS
      AC_MSG_RESULT([$have_mpi])
    ])
    AS_IF([test "x$have_mpi" = xno && test "x$with_mpi" = xyes],
      [AC_MSG_ERROR([--with-mpi=yes but MPI (Open MPI) was not found or does not link: install Debian's libopenmpi-dev (apt-get install libopenmpi-dev), or set MPI_CFLAGS and MPI_LIBS (see config.log)])])
  ])
  AS_IF([test "x$have_mpi" = xyes],
    [AC_DEFINE([HAVE_MPI], [1], [MPI (Open MPI) is available])],
    [MPI_CFLAGS=
     MPI_LIBS=])
  AC_SUBST([MPI_CFLAGS])
  AC_SUBST([MPI_LIBS])
  AM_CONDITIONAL([HAVE_MPI], [test "x$have_mpi" = xyes])
])
