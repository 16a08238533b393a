/* test-threads.c - libclai has no global mutable state: contexts created, driven and freed from two threads
 * at once give correct results, and a context may move from one thread to another between uses.
 *
 * cmocka is not thread safe: the threads only record what went wrong in their struct; the main thread
 * asserts after pthread_join. */
#include <pthread.h>

#include "testutil.h"

#define NTHREADS 2
#define ITERS 20

/* Oclgrind 21.10 counts the work-groups of a launch in one process-wide variable (nextGroupIndex in its
 * KernelInvocation.cpp), so two launches at once from two threads skip or repeat work-groups. There the
 * threads still run at the same time with their own contexts, but take turns for each round of work. */
static int one_launch_at_a_time;
static pthread_mutex_t launch_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct worker {
  int id;
  int iters;
  int own_context;          /* 1: create and free the context in the thread; 0: use w->ctx */
  int churn;                /* > 0: only create, use once and free that many contexts */
  clai_context *ctx;
  pthread_barrier_t *start; /* all threads begin together */
  /* Results, read by the main thread after the join. */
  int failures;
  char first[1024];         /* the first failure */
  int iters_done;
  int contexts_made;
  double max_err;
} worker;

#define WFAIL(w, ...)                                                                                  \
  do {                                                                                                 \
    if ((w)->failures++ == 0) snprintf((w)->first, sizeof(w)->first, __VA_ARGS__);                    \
  } while (0)

#define WOK(w, ctx, call)                                                                              \
  do {                                                                                                 \
    clai_status s_ = (call);                                                                           \
    if (s_ != CLAI_OK) {                                                                               \
      WFAIL(w, "thread %d: %s -> %s: %s", (w)->id, #call, clai_status_name(s_), clai_errmsg(ctx));     \
      goto out;                                                                                        \
    }                                                                                                  \
  } while (0)

/* |got - want| <= atol + rtol |want| for all; records the first bad element. Returns 0 when all are close. */
static int compare(worker *w, const char *what, int it, const float *got, const double *want, size_t n) {
  const double atol = 1e-4, rtol = 1e-4;
  for (size_t i = 0; i < n; i++) {
    double err = fabs((double)got[i] - want[i]);
    if (err > w->max_err) w->max_err = err;
    if (!(err <= atol + rtol * fabs(want[i]))) {
      WFAIL(w, "thread %d iteration %d: %s element %zu is %.9g, expected %.9g", w->id, it, what, i, (double)got[i],
            want[i]);
      return -1;
    }
  }
  return 0;
}

static double ref_unary(clai_unary_op op, double x) {
  switch (op) {
  case CLAI_TANH: return tanh(x);
  case CLAI_RELU: return x > 0 ? x : 0;
  case CLAI_SIGMOID: return 1.0 / (1.0 + exp(-x));
  case CLAI_NEG: return -x;
  default: return NAN;
  }
}

/* One round of work on ctx: C = alpha * A op(B) (A sometimes batched), D = C (+ or *) bias, E = f(D) in
 * place, all checked against a host reference; plus a deliberate error whose message must be this
 * thread's own. Every tensor is freed. Returns 0 on success. */
static int one_iteration(worker *w, clai_context *ctx, clait_rng *rng, int it) {
  int rc = -1;
  clai_tensor *A = NULL, *B = NULL, *C = NULL, *bias = NULL, *D = NULL, *q = NULL, *r = NULL;
  float *a = NULL, *b = NULL, *bv = NULL, *gc = NULL, *ge = NULL;
  double *wc = NULL, *we = NULL;
  const int64_t batch = it % 3 == 2 ? 2 : 1;
  const int64_t M = 1 + (int64_t)(clait_next(rng) % 33), K = 1 + (int64_t)(clait_next(rng) % 47),
                N = 1 + (int64_t)(clait_next(rng) % 29);
  const int trans_b = (w->id + it) & 1;
  const float alpha = 0.5f + (float)w->id;
  const clai_binary_op bop = it % 2 ? CLAI_MUL : CLAI_ADD;
  static const clai_unary_op uops[4] = {CLAI_TANH, CLAI_RELU, CLAI_SIGMOID, CLAI_NEG};
  const clai_unary_op uop = uops[(it + w->id) % 4];
  const size_t na = (size_t)(batch * M * K), nb = (size_t)(K * N), nc = (size_t)(batch * M * N);

  a = malloc(na * sizeof *a);
  b = malloc(nb * sizeof *b);
  bv = malloc((size_t)N * sizeof *bv);
  gc = malloc(nc * sizeof *gc);
  ge = malloc(nc * sizeof *ge);
  wc = malloc(nc * sizeof *wc);
  we = malloc(nc * sizeof *we);
  if (!a || !b || !bv || !gc || !ge || !wc || !we) {
    WFAIL(w, "thread %d: out of host memory", w->id);
    goto out;
  }
  clait_fill(rng, a, na, -1.0f, 1.0f);
  clait_fill(rng, b, nb, -1.0f, 1.0f);
  clait_fill(rng, bv, (size_t)N, -1.0f, 1.0f);

  const int64_t sa3[3] = {batch, M, K}, sc3[3] = {batch, M, N};
  const int nd = batch > 1 ? 3 : 2;
  const int64_t *sa = batch > 1 ? sa3 : sa3 + 1, *sc = batch > 1 ? sc3 : sc3 + 1;
  const int64_t sb[2] = {trans_b ? N : K, trans_b ? K : N}, sbias[1] = {N};
  WOK(w, ctx, clai_tensor_init(ctx, &A, CLAI_DTYPE_F32, nd, sa));
  WOK(w, ctx, clai_tensor_init(ctx, &B, CLAI_DTYPE_F32, 2, sb));
  WOK(w, ctx, clai_tensor_init(ctx, &C, CLAI_DTYPE_F32, nd, sc));
  WOK(w, ctx, clai_tensor_init(ctx, &D, CLAI_DTYPE_F32, nd, sc));
  WOK(w, ctx, clai_tensor_init(ctx, &bias, CLAI_DTYPE_F32, 1, sbias));
  WOK(w, ctx, clai_tensor_write(A, a, na * sizeof *a));
  WOK(w, ctx, clai_tensor_write(B, b, nb * sizeof *b));
  WOK(w, ctx, clai_tensor_write(bias, bv, (size_t)N * sizeof *bv));
  /* NaN in C must not matter with beta = 0. */
  WOK(w, ctx, clai_fill(ctx, C, NAN));
  WOK(w, ctx, clai_matmul(ctx, C, A, 0, B, trans_b, alpha, 0.0f));
  WOK(w, ctx, clai_binary(ctx, bop, D, C, bias));
  WOK(w, ctx, clai_unary(ctx, uop, D, D));

  /* This thread's own error, with sizes no other thread uses. */
  const int64_t qs[1] = {1000 + 10 * w->id + it % 7}, rs[1] = {qs[0] + 1};
  WOK(w, ctx, clai_tensor_init(ctx, &q, CLAI_DTYPE_F32, 1, qs));
  WOK(w, ctx, clai_tensor_init(ctx, &r, CLAI_DTYPE_F32, 1, rs));
  clai_status st = clai_binary(ctx, CLAI_SUB, q, q, r);
  char want_msg[64];
  snprintf(want_msg, sizeof want_msg, "b [%lld] do not broadcast to out [%lld]", (long long)rs[0], (long long)qs[0]);
  if (st != CLAI_E_SHAPE || strstr(clai_errmsg(ctx), want_msg) == NULL) {
    WFAIL(w, "thread %d iteration %d: expected CLAI_E_SHAPE mentioning \"%s\", got %s: \"%s\"", w->id, it, want_msg,
          clai_status_name(st), clai_errmsg(ctx));
    goto out;
  }

  WOK(w, ctx, clai_tensor_read(C, gc, nc * sizeof *gc));
  WOK(w, ctx, clai_tensor_read(D, ge, nc * sizeof *ge));

  for (int64_t p = 0; p < batch; p++)
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        double s = 0;
        for (int64_t k = 0; k < K; k++)
          s += (double)a[(p * M + i) * K + k] * (double)(trans_b ? b[j * K + k] : b[k * N + j]);
        s *= alpha;
        size_t o = (size_t)((p * M + i) * N + j);
        wc[o] = s;
        /* D is computed from the f32 C the device holds. */
        double d = bop == CLAI_ADD ? (double)gc[o] + bv[j] : (double)gc[o] * bv[j];
        we[o] = ref_unary(uop, d);
      }
  if (compare(w, "matmul", it, gc, wc, nc) != 0) goto out;
  if (compare(w, "binary+unary", it, ge, we, nc) != 0) goto out;
  rc = 0;
out:
  clai_tensor_free(A);
  clai_tensor_free(B);
  clai_tensor_free(C);
  clai_tensor_free(D);
  clai_tensor_free(bias);
  clai_tensor_free(q);
  clai_tensor_free(r);
  free(a);
  free(b);
  free(bv);
  free(gc);
  free(ge);
  free(wc);
  free(we);
  return rc;
}

static clai_context *make_context(worker *w) {
  char err[512];
  clai_context *ctx = NULL;
  clai_status st = clai_context_init_ex(&ctx, NULL, err, sizeof err);
  if (st != CLAI_OK || ctx == NULL) {
    WFAIL(w, "thread %d: clai_context_init_ex -> %s: %s", w->id, clai_status_name(st), err);
    return NULL;
  }
  w->contexts_made++;
  return ctx;
}

/* After a worker's tensors are freed, its context holds no tensor memory. */
static void check_idle(worker *w, clai_context *ctx) {
  clai_context_stats stats;
  clai_status st = clai_context_stats_get(ctx, &stats);
  if (st != CLAI_OK) WFAIL(w, "thread %d: clai_context_stats_get -> %s", w->id, clai_status_name(st));
  else if (stats.bytes_in_use != 0)
    WFAIL(w, "thread %d: %llu bytes still in use after freeing every tensor", w->id,
          (unsigned long long)stats.bytes_in_use);
}

/* A small job for a fresh context: fill, relu in place, read. */
static void tiny_job(worker *w, clai_context *ctx, int round) {
  clai_tensor *t = NULL;
  const int64_t s[2] = {3, 5 + w->id};
  const double v = w->id % 2 ? -(round + 1.5) : round + 1.5;
  float got[3 * 6];
  WOK(w, ctx, clai_tensor_init(ctx, &t, CLAI_DTYPE_F32, 2, s));
  WOK(w, ctx, clai_fill(ctx, t, v));
  WOK(w, ctx, clai_unary(ctx, CLAI_RELU, t, t));
  WOK(w, ctx, clai_tensor_read(t, got, sizeof got));
  for (int i = 0; i < 3 * (5 + w->id); i++)
    if (got[i] != (float)(v > 0 ? v : 0)) {
      WFAIL(w, "thread %d round %d: element %d is %g, expected %g", w->id, round, i, got[i], v > 0 ? v : 0);
      break;
    }
out:
  clai_tensor_free(t);
}

static void *worker_main(void *arg) {
  worker *w = arg;
  pthread_barrier_wait(w->start);
  if (w->churn > 0) {
    for (int round = 0; round < w->churn; round++) {
      clai_context *ctx = make_context(w);
      if (ctx == NULL) return NULL;
      if (one_launch_at_a_time) pthread_mutex_lock(&launch_lock);
      tiny_job(w, ctx, round);
      if (one_launch_at_a_time) pthread_mutex_unlock(&launch_lock);
      check_idle(w, ctx);
      clai_context_free(ctx);
    }
    return NULL;
  }
  clai_context *ctx = w->own_context ? make_context(w) : w->ctx;
  if (ctx == NULL) return NULL;
  clait_rng rng = {0x9e3779b97f4a7c15ULL * (uint64_t)(w->id + 1) + (uint64_t)w->iters_done};
  int stop = w->iters_done + w->iters;
  for (int it = w->iters_done; it < stop; it++) {
    if (one_launch_at_a_time) pthread_mutex_lock(&launch_lock);
    int rc = one_iteration(w, ctx, &rng, it);
    if (one_launch_at_a_time) pthread_mutex_unlock(&launch_lock);
    if (rc != 0) break;
    w->iters_done++;
  }
  check_idle(w, ctx);
  if (w->own_context) clai_context_free(ctx);
  return NULL;
}

/* Runs the workers in threads, started together; returns after every join. */
static void run_workers(worker *ws, int n) {
  pthread_t th[NTHREADS];
  pthread_barrier_t start;
  assert_true(n <= NTHREADS);
  assert_int_equal(pthread_barrier_init(&start, NULL, (unsigned)n), 0);
  for (int i = 0; i < n; i++) {
    ws[i].start = &start;
    assert_int_equal(pthread_create(&th[i], NULL, worker_main, &ws[i]), 0);
  }
  for (int i = 0; i < n; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
  pthread_barrier_destroy(&start);
}

static void expect_clean(const worker *w) {
  if (w->failures != 0) fail_msg("%d failure(s); first: %s", w->failures, w->first);
}

/* Two threads, each creating its own context at the same moment and driving it. */
static void test_parallel_own_contexts(void **state) {
  (void)state;
  worker ws[NTHREADS];
  memset(ws, 0, sizeof ws);
  for (int i = 0; i < NTHREADS; i++) {
    ws[i].id = i;
    ws[i].iters = ITERS;
    ws[i].own_context = 1;
  }
  run_workers(ws, NTHREADS);
  for (int i = 0; i < NTHREADS; i++) {
    expect_clean(&ws[i]);
    assert_int_equal(ws[i].contexts_made, 1);
    assert_int_equal(ws[i].iters_done, ITERS);
  }
  print_message("# max abs error: %g, %g\n", ws[0].max_err, ws[1].max_err);
}

/* Contexts created in the main thread, driven by two threads at once, then used by the main thread again
 * and by the other thread (a context may change threads between uses). */
static void test_parallel_handed_contexts(void **state) {
  (void)state;
  clai_context *ctx[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) ctx[i] = clait_ctx();
  assert_ptr_not_equal(ctx[0], ctx[1]);
  worker ws[NTHREADS];
  memset(ws, 0, sizeof ws);
  for (int i = 0; i < NTHREADS; i++) {
    ws[i].id = i;
    ws[i].iters = ITERS / 2;
    ws[i].ctx = ctx[i];
  }
  run_workers(ws, NTHREADS);
  for (int i = 0; i < NTHREADS; i++) {
    expect_clean(&ws[i]);
    assert_int_equal(ws[i].iters_done, ITERS / 2);
    /* Each context kept its own last error (from its own thread's deliberate failure). */
    char want[32];
    snprintf(want, sizeof want, "out [%d]", 1000 + 10 * i + (ITERS / 2 - 1) % 7);
    if (strstr(clai_errmsg(ctx[i]), want) == NULL)
      fail_msg("context %d: last message \"%s\" does not mention \"%s\"", i, clai_errmsg(ctx[i]), want);
  }
  /* Swap: each context now goes to the other thread. */
  for (int i = 0; i < NTHREADS; i++) ws[i].ctx = ctx[(i + 1) % NTHREADS];
  run_workers(ws, NTHREADS);
  for (int i = 0; i < NTHREADS; i++) {
    expect_clean(&ws[i]);
    assert_int_equal(ws[i].iters_done, ITERS);
  }
  /* And back in the main thread: a small product. */
  for (int i = 0; i < NTHREADS; i++) {
    clai_tensor *a = NULL, *c = NULL;
    const int64_t s[2] = {2, 2};
    const float av[4] = {1, 2, 3, 4};
    float got[4];
    CLAIT_OK(ctx[i], clai_tensor_init(ctx[i], &a, CLAI_DTYPE_F32, 2, s));
    CLAIT_OK(ctx[i], clai_tensor_init(ctx[i], &c, CLAI_DTYPE_F32, 2, s));
    CLAIT_OK(ctx[i], clai_tensor_write(a, av, sizeof av));
    CLAIT_OK(ctx[i], clai_matmul(ctx[i], c, a, 0, a, 1, 1.0f, 0.0f)); /* a a^T = [5 11; 11 25] */
    CLAIT_OK(ctx[i], clai_tensor_read(c, got, sizeof got));
    assert_float_equal(got[0], 5.0f, 1e-5f);
    assert_float_equal(got[1], 11.0f, 1e-5f);
    assert_float_equal(got[2], 11.0f, 1e-5f);
    assert_float_equal(got[3], 25.0f, 1e-5f);
    clai_tensor_free(a);
    clai_tensor_free(c);
    clai_context_free(ctx[i]);
  }
}

/* Both threads create, use and free contexts at the same time, a few times over. */
static void test_context_churn(void **state) {
  (void)state;
  worker ws[NTHREADS];
  memset(ws, 0, sizeof ws);
  for (int i = 0; i < NTHREADS; i++) {
    ws[i].id = i;
    ws[i].churn = 4;
  }
  run_workers(ws, NTHREADS);
  for (int i = 0; i < NTHREADS; i++) {
    expect_clean(&ws[i]);
    assert_int_equal(ws[i].contexts_made, 4);
  }
}

int main(void) {
  clai_context *probe = NULL;
  if (clai_context_init(&probe, NULL) == CLAI_OK && clait_oclgrind(probe)) {
    one_launch_at_a_time = 1;
    printf("# concurrent kernel launches from two threads need an implementation that allows them; on "
           "Oclgrind the threads take turns for each round of work\n");
  }
  clai_context_free(probe);
  const struct CMUnitTest tests[] = {
      CLAIT_TIMED(test_parallel_own_contexts),
      CLAIT_TIMED(test_parallel_handed_contexts),
      CLAIT_TIMED(test_context_churn),
  };
  return CLAIT_MAIN("threads", tests, 1);
}
