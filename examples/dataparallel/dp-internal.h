/* dp-internal.h - what the backends of dp.c and dp-mpi.c share: a group handle is a table of collectives. */
#ifndef CLAI_EXAMPLE_DP_INTERNAL_H
#define CLAI_EXAMPLE_DP_INTERNAL_H

#include "dp.h"

typedef struct dp_ops {
  const char *name;
  int (*sum_f32)(dp_comm *c, float *buf, size_t n, char *err, size_t cap);
  int (*sum_f64)(dp_comm *c, double *buf, size_t n, char *err, size_t cap);
  int (*bcast)(dp_comm *c, void *buf, size_t bytes, int root, char *err, size_t cap);
  int (*allgather)(dp_comm *c, const void *mine, void *all, size_t bytes, char *err, size_t cap);
  void (*fail)(dp_comm *c, const char *why);
  void (*free)(dp_comm *c);
} dp_ops;

struct dp_comm {
  const dp_ops *ops;
  int rank, size, local_rank, local_size;
  void *impl;
};

void dp__seterr(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
