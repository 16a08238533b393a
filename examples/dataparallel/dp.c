/* dp.c - data-parallel groups (dp.h): the group of one, the threads backend, and the gradient reduction on
 * device tensors (dp_allreduce, dp_reducer) over whichever backend. The MPI backend is dp-mpi.c.
 *
 * Threads: rank r publishes a pointer to its buffer, and after a barrier each rank sums one slice of the
 * elements over all ranks, in rank order, into a scratch buffer of the group, which every rank then copies
 * back: the same bits on every rank and in every run, whatever the slices. The barrier knows when a rank
 * has failed (dp_fail), so the others return with its message instead of waiting. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp-internal.h"

void dp__seterr(char *err, size_t cap, const char *fmt, ...) {
  if (err == NULL || cap == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, cap, fmt, ap);
  va_end(ap);
}

/* ---- the group of one -------------------------------------------------------------------------------------- */

static int one_sum_f32(dp_comm *c, float *buf, size_t n, char *err, size_t cap) {
  (void)c, (void)buf, (void)n, (void)err, (void)cap;
  return 0;
}
static int one_sum_f64(dp_comm *c, double *buf, size_t n, char *err, size_t cap) {
  (void)c, (void)buf, (void)n, (void)err, (void)cap;
  return 0;
}
static int one_bcast(dp_comm *c, void *buf, size_t bytes, int root, char *err, size_t cap) {
  (void)c, (void)buf, (void)bytes, (void)root, (void)err, (void)cap;
  return 0;
}
static int one_allgather(dp_comm *c, const void *mine, void *all, size_t bytes, char *err, size_t cap) {
  (void)c, (void)err, (void)cap;
  if (bytes > 0) memmove(all, mine, bytes);
  return 0;
}
static void one_fail(dp_comm *c, const char *why) { (void)c, (void)why; }
static void one_free(dp_comm *c);

static const dp_ops ONE = {"single", one_sum_f32, one_sum_f64, one_bcast, one_allgather, one_fail, one_free};
static dp_comm one_fallback = {&ONE, 0, 1, 0, 1, NULL}; /* when even a handle cannot be allocated */

static void one_free(dp_comm *c) {
  if (c != &one_fallback) free(c);
}

dp_comm *dp_single(void) {
  dp_comm *c = malloc(sizeof *c);
  if (c == NULL) return &one_fallback;
  *c = (dp_comm){&ONE, 0, 1, 0, 1, NULL};
  return c;
}

/* ---- threads --------------------------------------------------------------------------------------------- */

struct dp_threads {
  int n;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int arrived;
  unsigned gen;
  int failed;
  char why[512];
  const void **ptrs; /* each rank's buffer in the collective under way */
  void *scratch;
  size_t scratch_bytes;
};

dp_threads *dp_threads_new(int n) {
  if (n < 1) return NULL;
  dp_threads *th = calloc(1, sizeof *th);
  if (th == NULL) return NULL;
  th->n = n;
  th->ptrs = calloc((size_t)n, sizeof *th->ptrs);
  if (th->ptrs == NULL || pthread_mutex_init(&th->mu, NULL) != 0) {
    free(th->ptrs), free(th);
    return NULL;
  }
  if (pthread_cond_init(&th->cv, NULL) != 0) {
    pthread_mutex_destroy(&th->mu);
    free(th->ptrs), free(th);
    return NULL;
  }
  return th;
}

void dp_threads_free(dp_threads *th) {
  if (th == NULL) return;
  pthread_cond_destroy(&th->cv);
  pthread_mutex_destroy(&th->mu);
  free(th->ptrs), free(th->scratch), free(th);
}

/* Waits until every rank has arrived; -1 (with the failed rank's message) once any rank has failed. */
static int th_barrier(dp_threads *th, char *err, size_t cap) {
  pthread_mutex_lock(&th->mu);
  if (!th->failed) {
    unsigned gen = th->gen;
    if (++th->arrived == th->n) {
      th->arrived = 0, th->gen++;
      pthread_cond_broadcast(&th->cv);
    } else {
      while (gen == th->gen && !th->failed) pthread_cond_wait(&th->cv, &th->mu);
    }
  }
  int failed = th->failed;
  if (failed) dp__seterr(err, cap, "%s", th->why);
  pthread_mutex_unlock(&th->mu);
  return failed ? -1 : 0;
}

static void th_fail(dp_comm *c, const char *why) {
  dp_threads *th = c->impl;
  pthread_mutex_lock(&th->mu);
  if (!th->failed) {
    th->failed = 1;
    snprintf(th->why, sizeof th->why, "rank %d: %s", c->rank, why);
  }
  pthread_cond_broadcast(&th->cv);
  pthread_mutex_unlock(&th->mu);
}

/* The sum over ranks of n elements of es bytes (4: float, 8: double), in rank order. */
static int th_sum(dp_comm *c, void *buf, size_t n, size_t es, char *err, size_t cap) {
  dp_threads *th = c->impl;
  if (c->size == 1 || n == 0) return 0;
  if (c->rank == 0 && th->scratch_bytes < n * es) { /* the others touch scratch only after the barrier */
    void *p = realloc(th->scratch, n * es);
    if (p == NULL) {
      th_fail(c, "out of host memory for the sum");
    } else {
      th->scratch = p, th->scratch_bytes = n * es;
    }
  }
  th->ptrs[c->rank] = buf;
  if (th_barrier(th, err, cap) != 0) return -1;
  size_t lo = n * (size_t)c->rank / (size_t)c->size, hi = n * (size_t)(c->rank + 1) / (size_t)c->size;
  if (es == sizeof(float)) {
    float *out = th->scratch;
    for (size_t i = lo; i < hi; i++) {
      float s = ((const float *)th->ptrs[0])[i];
      for (int r = 1; r < c->size; r++) s += ((const float *)th->ptrs[r])[i];
      out[i] = s;
    }
  } else {
    double *out = th->scratch;
    for (size_t i = lo; i < hi; i++) {
      double s = ((const double *)th->ptrs[0])[i];
      for (int r = 1; r < c->size; r++) s += ((const double *)th->ptrs[r])[i];
      out[i] = s;
    }
  }
  if (th_barrier(th, err, cap) != 0) return -1;
  memcpy(buf, th->scratch, n * es);
  return th_barrier(th, err, cap);
}

static int th_sum_f32(dp_comm *c, float *buf, size_t n, char *err, size_t cap) {
  return th_sum(c, buf, n, sizeof(float), err, cap);
}
static int th_sum_f64(dp_comm *c, double *buf, size_t n, char *err, size_t cap) {
  return th_sum(c, buf, n, sizeof(double), err, cap);
}

static int th_bcast(dp_comm *c, void *buf, size_t bytes, int root, char *err, size_t cap) {
  dp_threads *th = c->impl;
  if (c->rank == root) th->ptrs[root] = buf;
  if (th_barrier(th, err, cap) != 0) return -1;
  if (c->rank != root && bytes > 0) memcpy(buf, th->ptrs[root], bytes);
  return th_barrier(th, err, cap);
}

static int th_allgather(dp_comm *c, const void *mine, void *all, size_t bytes, char *err, size_t cap) {
  dp_threads *th = c->impl;
  th->ptrs[c->rank] = mine;
  if (th_barrier(th, err, cap) != 0) return -1;
  for (int r = 0; r < c->size; r++) memcpy((char *)all + (size_t)r * bytes, th->ptrs[r], bytes);
  return th_barrier(th, err, cap);
}

static void th_free(dp_comm *c) { free(c); }

static const dp_ops THREADS = {"threads", th_sum_f32, th_sum_f64, th_bcast, th_allgather, th_fail, th_free};

dp_comm *dp_threads_comm(dp_threads *th, int rank) {
  if (th == NULL || rank < 0 || rank >= th->n) return NULL;
  dp_comm *c = malloc(sizeof *c);
  if (c == NULL) return NULL;
  *c = (dp_comm){&THREADS, rank, th->n, rank, th->n, th};
  return c;
}

/* ---- the group interface --------------------------------------------------------------------------------- */

void dp_comm_free(dp_comm *c) {
  if (c != NULL && c->ops != NULL && c->ops->free != NULL) c->ops->free(c);
}
int dp_rank(const dp_comm *c) { return c->rank; }
int dp_size(const dp_comm *c) { return c->size; }
int dp_local_rank(const dp_comm *c) { return c->local_rank; }
int dp_local_size(const dp_comm *c) { return c->local_size; }
const char *dp_backend(const dp_comm *c) { return c->ops->name; }

int dp_sum_f32(dp_comm *c, float *buf, size_t n, char *err, size_t cap) { return c->ops->sum_f32(c, buf, n, err, cap); }
int dp_sum_f64(dp_comm *c, double *buf, size_t n, char *err, size_t cap) { return c->ops->sum_f64(c, buf, n, err, cap); }
int dp_bcast(dp_comm *c, void *buf, size_t bytes, int root, char *err, size_t cap) {
  return c->ops->bcast(c, buf, bytes, root, err, cap);
}
int dp_allgather(dp_comm *c, const void *mine, void *all, size_t bytes, char *err, size_t cap) {
  return c->ops->allgather(c, mine, all, bytes, err, cap);
}
void dp_fail(dp_comm *c, const char *why) { c->ops->fail(c, why); }

typedef struct agree_msg {
  int ok;
  char why[500];
} agree_msg;

int dp_agree(dp_comm *c, int ok, const char *why, char *err, size_t cap) {
  agree_msg mine;
  memset(&mine, 0, sizeof mine);
  mine.ok = ok;
  snprintf(mine.why, sizeof mine.why, "%s", why != NULL ? why : "(no reason given)");
  agree_msg *all = calloc((size_t)c->size, sizeof *all);
  if (all == NULL) {
    dp__seterr(err, cap, "rank %d: out of host memory", c->rank);
    dp_fail(c, "out of host memory");
    return -1;
  }
  int rc = dp_allgather(c, &mine, all, sizeof mine, err, cap);
  for (int r = 0; rc == 0 && r < c->size; r++)
    if (!all[r].ok) {
      dp__seterr(err, cap, "rank %d: %s", r, all[r].why);
      rc = -1;
    }
  free(all);
  return rc;
}

/* ---- gradients on the device ----------------------------------------------------------------------------- */

static int check_flat(clai_tensor *flat, char *err, size_t cap) {
  if (flat == NULL || clai_tensor_dtype(flat) != CLAI_DTYPE_F32 || !clai_tensor_is_contiguous(flat)) {
    dp__seterr(err, cap, "the gradient to reduce must be a dense f32 tensor");
    return -1;
  }
  return 0;
}

/* The sum over ranks of the mapped tensor t of n elements: map, sum, unmap. */
static int reduce_mapped(dp_comm *c, clai_tensor *t, float *p, int64_t n, char *err, size_t cap) {
  clai_context *ctx = clai_tensor_context(t);
  clai_status st = clai_tensor_map_wait(t);
  if (st != CLAI_OK) {
    dp__seterr(err, cap, "mapping the gradient: %s: %s", clai_status_name(st), clai_errmsg(ctx));
    clai_tensor_unmap(t);
    return -1;
  }
  int rc = dp_sum_f32(c, p, (size_t)n, err, cap);
  if ((st = clai_tensor_unmap(t)) != CLAI_OK && rc == 0) {
    dp__seterr(err, cap, "unmapping the gradient: %s: %s", clai_status_name(st), clai_errmsg(ctx));
    rc = -1;
  }
  return rc;
}

int dp_allreduce(dp_comm *c, clai_tensor *flat, char *err, size_t cap) {
  if (check_flat(flat, err, cap) != 0) return -1;
  if (c->size == 1) return 0;
  void *p = NULL;
  clai_status st = clai_tensor_map(flat, CLAI_MAP_READ | CLAI_MAP_WRITE, &p);
  if (st != CLAI_OK) {
    dp__seterr(err, cap, "mapping the gradient: %s: %s", clai_status_name(st), clai_errmsg(clai_tensor_context(flat)));
    return -1;
  }
  return reduce_mapped(c, flat, p, clai_tensor_numel(flat), err, cap);
}

typedef struct bucket {
  clai_tensor *grad, *stage; /* views of the flat gradient and of the staging tensor, same elements */
  float *p;
  int64_t n;
} bucket;

struct dp_reducer {
  dp_comm *c;
  clai_tensor *flat, *stage;
  int64_t n, from;           /* [from, n) handed over this step */
  int64_t bucket_elems;
  bucket *b;
  int nb, capb;
  char err[1024];
};

int dp_reducer_init(dp_comm *c, clai_tensor *flat, size_t bucket_bytes, dp_reducer **out, char *err, size_t cap) {
  *out = NULL;
  if (check_flat(flat, err, cap) != 0) return -1;
  dp_reducer *r = calloc(1, sizeof *r);
  if (r == NULL) {
    dp__seterr(err, cap, "out of host memory");
    return -1;
  }
  r->c = c, r->flat = flat, r->n = r->from = clai_tensor_numel(flat);
  r->bucket_elems = (int64_t)((bucket_bytes > 0 ? bucket_bytes : (size_t)4 << 20) / sizeof(float));
  if (r->bucket_elems < 1) r->bucket_elems = 1;
  if (c->size > 1) {
    const int64_t shape[1] = {r->n};
    clai_status st = clai_tensor_init(clai_tensor_context(flat), &r->stage, CLAI_DTYPE_F32, 1, shape);
    if (st != CLAI_OK) {
      dp__seterr(err, cap, "the staging tensor of the reduction: %s: %s", clai_status_name(st),
                 clai_errmsg(clai_tensor_context(flat)));
      free(r);
      return -1;
    }
  }
  *out = r;
  return 0;
}

const char *dp_reducer_error(const dp_reducer *r) { return r->err; }

static void drop_buckets(dp_reducer *r) {
  for (int i = 0; i < r->nb; i++) {
    clai_tensor_free(r->b[i].grad); /* frees a mapped view's mapping too */
    clai_tensor_free(r->b[i].stage);
  }
  r->nb = 0;
}

static int fail_st(dp_reducer *r, const char *what, clai_status st) {
  snprintf(r->err, sizeof r->err, "%s: %s: %s", what, clai_status_name(st), clai_errmsg(clai_tensor_context(r->flat)));
  return -1;
}

int dp_reducer_ready(dp_reducer *r, int64_t from) {
  if (from < 0) from = 0;
  if (from >= r->from) return 0;
  if (r->c->size == 1) {
    r->from = from;
    return 0;
  }
  clai_context *ctx = clai_tensor_context(r->flat);
  /* Pieces from the top down, in the order the backward pass finishes them. */
  for (int64_t hi = r->from; hi > from;) {
    int64_t lo = hi - r->bucket_elems > from ? hi - r->bucket_elems : from;
    if (r->nb == r->capb) {
      int nc = r->capb ? 2 * r->capb : 8;
      bucket *nbk = realloc(r->b, (size_t)nc * sizeof *nbk);
      if (nbk == NULL) {
        snprintf(r->err, sizeof r->err, "out of host memory");
        return -1;
      }
      r->b = nbk, r->capb = nc;
    }
    bucket *b = &r->b[r->nb];
    memset(b, 0, sizeof *b);
    clai_status st = clai_tensor_slice(r->flat, &b->grad, 0, lo, hi, 1);
    if (st == CLAI_OK) st = clai_tensor_slice(r->stage, &b->stage, 0, lo, hi, 1);
    if (st != CLAI_OK) {
      clai_tensor_free(b->grad), clai_tensor_free(b->stage);
      return fail_st(r, "a bucket of the gradient", st);
    }
    r->nb++;
    b->n = hi - lo;
    /* The staging copy is a buffer no later op of the backward pass touches, so it may stay mapped while they
     * run (OpenCL 1.2, 5.4.2.1); the map waits for the copy only. */
    void *p = NULL;
    if ((st = clai_copy(ctx, b->stage, b->grad)) != CLAI_OK) return fail_st(r, "staging a bucket", st);
    if ((st = clai_tensor_map(b->stage, CLAI_MAP_READ | CLAI_MAP_WRITE | CLAI_MAP_ASYNC, &p)) != CLAI_OK)
      return fail_st(r, "mapping a bucket", st);
    b->p = p;
    hi = lo;
  }
  r->from = from;
  return 0;
}

int dp_reducer_finish(dp_reducer *r) {
  int rc = dp_reducer_ready(r, 0);
  clai_context *ctx = clai_tensor_context(r->flat);
  for (int i = 0; rc == 0 && i < r->nb; i++) {
    bucket *b = &r->b[i];
    rc = reduce_mapped(r->c, b->stage, b->p, b->n, r->err, sizeof r->err);
    clai_status st;
    if (rc == 0 && (st = clai_copy(ctx, b->grad, b->stage)) != CLAI_OK) rc = fail_st(r, "copying a bucket back", st);
  }
  drop_buckets(r);
  r->from = r->n;
  return rc;
}

void dp_reducer_free(dp_reducer *r) {
  if (r == NULL) return;
  drop_buckets(r);
  free(r->b);
  clai_tensor_free(r->stage);
  free(r);
}
