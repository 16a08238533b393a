/* bench.h - what the clai tool's files share. */
#ifndef CLAI_TOOLS_BENCH_H
#define CLAI_TOOLS_BENCH_H

#include <stddef.h>
#include <stdint.h>

int clai_tool_bench(int argc, char **argv);
int clai_tool_tune(int argc, char **argv);
int bench_train(int argc, char **argv); /* bench-train.c */
int bench_allreduce(int argc, char **argv); /* bench-allreduce.c */

/* Parses "N" (square) or "MxNxK" shapes separated by commas into out (at most cap); returns how many, or
 * -1 on a malformed list. */
int bench_parse_shapes(const char *s, int64_t (*out)[3], int cap);

/* What a reference from outside libclai gives: GFLOP/s as median/min/max of its timings, or a reason in why
 * when it is not available. */
typedef struct bench_ref_result {
  double median, min, max;
  char why[256];
  char what[256]; /* which library and how it ran */
} bench_ref_result;

double bench_now(void);
/* Sleeps until this process's other threads are idle (under a tenth of a core over 5 ms) or 0.3 s have
 * passed, and returns the seconds it slept. Between two sides taking turns: OpenBLAS's worker threads spin
 * for 2^28 cycles after each call before they sleep (its THREAD_TIMEOUT; 130 ms of a whole core on the
 * 2-core Xeon VM), which would run on through the start of the next side's timing. */
double bench_settle(void);

/* The device's single-precision FMA peak in GFLOP/s, measured with independent fma chains on the OpenCL
 * device named device_name (its own context, in this process; bench-peak.c), timed as bench_measure does;
 * -1 with a reason in why when it cannot run there. */
int bench_peak(const char *device_name, int samples, double min_seconds, bench_ref_result *r);
#ifdef CL_VERSION_1_0 /* for the files that include CL/cl.h before this one */
/* The OpenCL device named name (CL_DEVICE_NAME, as clai_device_info gives it), NULL when none has it; its
 * platform in *plat unless plat is NULL. */
cl_device_id bench_find_device(const char *name, cl_platform_id *plat);
#endif

/* cblas_sgemm of OpenBLAS (loaded once with dlopen, threads as for bench_openblas_prepare), or NULL with a
 * reason in why when it is not installed. For the CPU references of `clai bench ops`. */
typedef void (*bench_sgemm_fn)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                               const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
bench_sgemm_fn bench_openblas_sgemm(char *why, size_t cap);
enum { BENCH_ROW_MAJOR = 101, BENCH_NO_TRANS = 111, BENCH_TRANS = 112 };

/* Sets OPENBLAS_CORETYPE to the best kernels OpenBLAS has for this CPU (x86-64: Cooperlake or SkylakeX
 * with AVX-512, Haswell with AVX2 and FMA) when OpenBLAS is installed and would otherwise pick kernels below
 * the CPU, as releases older than the CPU do; leaves it alone when the user set it. OpenBLAS reads the
 * variable when it is loaded, and so does the PyTorch that `clai bench train` starts: call this first,
 * before anything loads OpenBLAS, while the process has one thread (it asks OpenBLAS in a forked child).
 * bench_openblas_kernels gives a line saying what was chosen and why (static storage; no newline). */
void bench_openblas_choose_kernels(void);
const char *bench_openblas_kernels(void);

/* The one timing method of every figure `clai bench` prints: run(arg) once as a warm-up and once more to
 * size a timing, then `samples` timings of `reps` runs each (reps chosen so a timing lasts at least
 * min_seconds), each ended by finish(arg) when not NULL (waiting for queued work). GFLOP/s of `flop` per run
 * go to median/min/max. Returns 0, or the first non-zero value run or finish returned. */
int bench_measure(int (*run)(void *), int (*finish)(void *), void *arg, double flop, int samples,
                  double min_seconds, double *median, double *min, double *max);

/* bench_measure in pieces, for sides that take turns (`clai bench gemm`): run(state) does one run or
 * enqueues it, finish(state) waits for queued work (NULL: run waits itself), release(state) frees what the
 * side's prepare function made (NULL: nothing to free). */
typedef struct bench_side {
  int (*run)(void *state);
  int (*finish)(void *state);
  void (*release)(void *state);
  void *state;
  int reps; /* runs per timing, set by bench_side_calibrate */
} bench_side;

/* The warm-up run and the sizing run of bench_measure; sets s->reps. Returns 0, or what run or finish
 * returned first when not 0. */
int bench_side_calibrate(bench_side *s, double min_seconds);
/* One timing of s->reps runs: GFLOP/s of `flop` per run in *gflops. Returns 0, or what run or finish returned
 * first when not 0 (*gflops then untouched). */
int bench_side_sample(bench_side *s, double flop, double *gflops);
/* Calls release (when not NULL) and zeroes *s; a zeroed side can be released again. */
void bench_side_release(bench_side *s);
/* Sorts v[0..n) (n >= 1) and gives its median, smallest and largest values. */
void bench_median_min_max(double *v, int n, double *median, double *min, double *max);

/* A reference SGEMM from outside libclai, measured in turns with libclai in the same run: row-major,
 * C = op(A) op(B), `batch` independent products, its data made and kept in *side until bench_side_release.
 * Each returns 0 with the library and how it runs in r->what, or -1 with a reason in r->why and *side
 * zeroed when the reference is not available. bench_clblast_prepare makes its own OpenCL context on the
 * device named device_name and calls CLBlast once (which compiles its kernels; how long in r->what). */
int bench_openblas_prepare(int64_t m, int64_t n, int64_t k, int64_t batch, int trans_a, int trans_b, bench_side *side,
                           bench_ref_result *r);
int bench_clblast_prepare(const char *device_name, int64_t m, int64_t n, int64_t k, int64_t batch, int trans_a,
                          int trans_b, bench_side *side, bench_ref_result *r);

/* `clai bench ops` (bench-ops.c) and its C references over rows [r0, r1) of row-major [rows, n] f32 data
 * (bench-ops-ref.c, built -O3 -ffast-math). */
int bench_ops(int argc, char **argv);
void bench_ref_softmax(float *out, const float *x, int64_t r0, int64_t r1, int64_t n);
void bench_ref_layernorm(float *out, const float *x, const float *gamma, const float *beta, int64_t r0, int64_t r1,
                         int64_t n, float eps);
void bench_ref_sum_rows(float *out, const float *x, int64_t r0, int64_t r1, int64_t n);
float bench_ref_sum(const float *x, int64_t i0, int64_t i1);
/* Column sums out[c] = sum over rows of x[r, c], for columns [c0, c1). */
void bench_ref_sum_cols(float *out, const float *x, int64_t c0, int64_t c1, int64_t rows, int64_t n);

#endif
