# clai_opencl.m4 - libclai's configure check for OpenCL.                              -*- Autoconf -*-
#
# CLAI_CHECK_OPENCL
# Requires the OpenCL ICD loader (pkg-config module OpenCL, from ocl-icd) and the CL/cl.h header, checked
# with the OpenCL target version the library is built for (1.2). Substitutes OPENCL_CFLAGS and
# OPENCL_LIBS; stops configure with the Debian packages to install when either is missing.
AC_DEFUN([CLAI_CHECK_OPENCL], [
  AC_REQUIRE([PKG_PROG_PKG_CONFIG])
  PKG_CHECK_MODULES([OPENCL], [OpenCL], [],
    [AC_MSG_ERROR([OpenCL (the ocl-icd loader) was not found: install Debian's ocl-icd-opencl-dev and opencl-c-headers (apt-get install ocl-icd-opencl-dev opencl-c-headers), and pocl-opencl-icd to run on the CPU])])
  clai_save_CPPFLAGS=$CPPFLAGS
  CPPFLAGS="$CPPFLAGS $OPENCL_CFLAGS -DCL_TARGET_OPENCL_VERSION=120"
  AC_CHECK_HEADER([CL/cl.h], [],
    [AC_MSG_ERROR([CL/cl.h was not found: install Debian's opencl-c-headers (apt-get install opencl-c-headers)])])
  CPPFLAGS=$clai_save_CPPFLAGS
])
