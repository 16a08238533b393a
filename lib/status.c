/* status.c - status names and texts (one table in clai.h), and the context's last-error message. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const char *clai_status_name(clai_status status) {
  switch (status) {
#define CLAI_NAME_CASE_(name, value, text) \
  case CLAI_##name:                        \
    return "CLAI_" #name;
    CLAI_STATUS_MAP(CLAI_NAME_CASE_)
#undef CLAI_NAME_CASE_
  }
  return "CLAI_UNKNOWN";
}

const char *clai_strerror(clai_status status) {
  switch (status) {
#define CLAI_TEXT_CASE_(name, value, text) \
  case CLAI_##name:                        \
    return text;
    CLAI_STATUS_MAP(CLAI_TEXT_CASE_)
#undef CLAI_TEXT_CASE_
  }
  return "unknown status";
}

const char *clai_version(void) { return PACKAGE_VERSION; }

const char *clai_errmsg(const clai_context *ctx) {
  if (ctx == NULL) return "no context (NULL)";
  return ctx->errmsg != NULL ? ctx->errmsg : "";
}

void clai__clear_error(clai_context *ctx) {
  if (ctx != NULL && ctx->errmsg != NULL) ctx->errmsg[0] = '\0';
}

static void set_message(clai_context *ctx, const char *suffix, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) n = 0;
  size_t need = (size_t)n + strlen(suffix) + 1;
  if (need > ctx->errcap) {
    char *p = realloc(ctx->errmsg, need);
    if (p == NULL) return; /* keep the old message rather than fail while failing */
    ctx->errmsg = p;
    ctx->errcap = need;
  }
  vsnprintf(ctx->errmsg, ctx->errcap, fmt, ap);
  strcat(ctx->errmsg, suffix);
}

clai_status clai__error(clai_context *ctx, clai_status status, const char *fmt, ...) {
  if (ctx != NULL) {
    va_list ap;
    va_start(ap, fmt);
    set_message(ctx, "", fmt, ap);
    va_end(ap);
  }
  return status;
}

clai_status clai__cl_status(cl_int err) {
  switch (err) {
  case CL_MEM_OBJECT_ALLOCATION_FAILURE:
  case CL_OUT_OF_RESOURCES:
  case CL_OUT_OF_HOST_MEMORY:
  case CL_INVALID_BUFFER_SIZE:
    return CLAI_E_OUT_OF_MEMORY;
  default:
    return CLAI_E_OPENCL;
  }
}

clai_status clai__cl_error(clai_context *ctx, cl_int err, const char *fmt, ...) {
  if (ctx != NULL) {
    char suffix[96];
    snprintf(suffix, sizeof suffix, " (OpenCL error %s, %d)", clai__cl_errname(err), (int)err);
    va_list ap;
    va_start(ap, fmt);
    set_message(ctx, suffix, fmt, ap);
    va_end(ap);
  }
  return clai__cl_status(err);
}

const char *clai__cl_errname(cl_int err) {
  switch (err) {
#define E_(x) \
  case x:     \
    return #x;
    E_(CL_SUCCESS) E_(CL_DEVICE_NOT_FOUND) E_(CL_DEVICE_NOT_AVAILABLE) E_(CL_COMPILER_NOT_AVAILABLE)
    E_(CL_MEM_OBJECT_ALLOCATION_FAILURE) E_(CL_OUT_OF_RESOURCES) E_(CL_OUT_OF_HOST_MEMORY)
    E_(CL_PROFILING_INFO_NOT_AVAILABLE) E_(CL_MEM_COPY_OVERLAP) E_(CL_IMAGE_FORMAT_MISMATCH)
    E_(CL_IMAGE_FORMAT_NOT_SUPPORTED) E_(CL_BUILD_PROGRAM_FAILURE) E_(CL_MAP_FAILURE)
    E_(CL_MISALIGNED_SUB_BUFFER_OFFSET) E_(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    E_(CL_COMPILE_PROGRAM_FAILURE) E_(CL_LINKER_NOT_AVAILABLE) E_(CL_LINK_PROGRAM_FAILURE)
    E_(CL_DEVICE_PARTITION_FAILED) E_(CL_KERNEL_ARG_INFO_NOT_AVAILABLE) E_(CL_INVALID_VALUE)
    E_(CL_INVALID_DEVICE_TYPE) E_(CL_INVALID_PLATFORM) E_(CL_INVALID_DEVICE) E_(CL_INVALID_CONTEXT)
    E_(CL_INVALID_QUEUE_PROPERTIES) E_(CL_INVALID_COMMAND_QUEUE) E_(CL_INVALID_HOST_PTR)
    E_(CL_INVALID_MEM_OBJECT) E_(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR) E_(CL_INVALID_IMAGE_SIZE)
    E_(CL_INVALID_SAMPLER) E_(CL_INVALID_BINARY) E_(CL_INVALID_BUILD_OPTIONS) E_(CL_INVALID_PROGRAM)
    E_(CL_INVALID_PROGRAM_EXECUTABLE) E_(CL_INVALID_KERNEL_NAME) E_(CL_INVALID_KERNEL_DEFINITION)
    E_(CL_INVALID_KERNEL) E_(CL_INVALID_ARG_INDEX) E_(CL_INVALID_ARG_VALUE) E_(CL_INVALID_ARG_SIZE)
    E_(CL_INVALID_KERNEL_ARGS) E_(CL_INVALID_WORK_DIMENSION) E_(CL_INVALID_WORK_GROUP_SIZE)
    E_(CL_INVALID_WORK_ITEM_SIZE) E_(CL_INVALID_GLOBAL_OFFSET) E_(CL_INVALID_EVENT_WAIT_LIST)
    E_(CL_INVALID_EVENT) E_(CL_INVALID_OPERATION) E_(CL_INVALID_GL_OBJECT) E_(CL_INVALID_BUFFER_SIZE)
    E_(CL_INVALID_MIP_LEVEL) E_(CL_INVALID_GLOBAL_WORK_SIZE) E_(CL_INVALID_PROPERTY)
    E_(CL_INVALID_IMAGE_DESCRIPTOR) E_(CL_INVALID_COMPILER_OPTIONS) E_(CL_INVALID_LINKER_OPTIONS)
    E_(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef E_
  }
  return "CL_UNKNOWN_ERROR";
}
