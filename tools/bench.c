/* bench.c - `clai bench gemm`: GFLOP/s of clai_matmul on the chosen device for a list of shapes, with the
 * data already on the device, as median/min/max of repeated timings after a warm-up; side by side with
 * OpenBLAS on the CPU (when installed) and CLBlast on the same device (when built with it), measured in
 * the same run and in turns (one timing of each side, then the next; the ratios are medians of per-turn
 * ratios), and each as a fraction of the device's FMA peak (the best of its timings) measured first in the
 * same run (bench-peak.c; OpenBLAS's only when the device is the CPU). --json prints one object per shape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "generate.h"
#include "bench.h"
#include "clai.h"

double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of all this process's threads */
static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double bench_settle(void) {
  const double start = bench_now();
  for (;;) {
    double c0 = cpu_seconds(), t0 = bench_now();
    nanosleep(&(struct timespec){0, 5000000}, NULL);
    double used = cpu_seconds() - c0, t1 = bench_now();
    if (used < 0.1 * (t1 - t0) || t1 - start >= 0.3) return t1 - start;
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

void bench_median_min_max(double *v, int n, double *median, double *min, double *max) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  *median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  *min = v[0];
  *max = v[n - 1];
}

int bench_side_calibrate(bench_side *s, double min_seconds) {
  int rc;
  /* warm-up: first-use costs (thread pools, page faults, compilation) */
  if ((rc = s->run(s->state)) != 0 || (s->finish != NULL && (rc = s->finish(s->state)) != 0)) return rc;
  double t0 = bench_now();
  if ((rc = s->run(s->state)) != 0 || (s->finish != NULL && (rc = s->finish(s->state)) != 0)) return rc;
  double once = bench_now() - t0;
  s->reps = once > 0 && once < min_seconds ? (int)(min_seconds / once) + 1 : 1;
  return 0;
}

int bench_side_sample(bench_side *s, double flop, double *gflops) {
  int rc;
  double t0 = bench_now();
  for (int i = 0; i < s->reps; i++)
    if ((rc = s->run(s->state)) != 0) return rc;
  if (s->finish != NULL && (rc = s->finish(s->state)) != 0) return rc;
  *gflops = flop * s->reps / (bench_now() - t0) * 1e-9;
  return 0;
}

void bench_side_release(bench_side *s) {
  if (s->release != NULL) s->release(s->state);
  memset(s, 0, sizeof *s);
}

int bench_measure(int (*run)(void *), int (*finish)(void *), void *arg, double flop, int samples,
                  double min_seconds, double *median, double *min, double *max) {
  bench_side side = {run, finish, NULL, arg, 0};
  int rc = bench_side_calibrate(&side, min_seconds);
  double g[64];
  if (samples > 64) samples = 64;
  if (samples < 1) samples = 1;
  for (int s = 0; s < samples && rc == 0; s++) rc = bench_side_sample(&side, flop, &g[s]);
  if (rc != 0) return rc;
  bench_median_min_max(g, samples, median, min, max);
  return 0;
}

typedef struct clai_run {
  clai_context *ctx;
  clai_tensor *a, *b, *c;
  int trans_a, trans_b;
} clai_run;

static int run_clai(void *arg) {
  clai_run *r = arg;
  return clai_matmul(r->ctx, r->c, r->a, r->trans_a, r->b, r->trans_b, 1.0f, 0.0f);
}

static int finish_clai(void *arg) { return clai_sync(((clai_run *)arg)->ctx); }

typedef struct shape {
  int64_t m, n, k;
} shape;

typedef struct options {
  shape shapes[64];
  int nshapes;
  int64_t batch;
  int trans_a, trans_b;
  clai_dtype dtype;
  int json, samples, refs;
  int said_refs; /* the references' descriptions were printed */
  double min_time;
  double peak;    /* the device's measured FMA peak in GFLOP/s, 0 when unknown */
  int cpu;        /* the device is the CPU (OpenBLAS's figures are fractions of its peak too) */
  double top;     /* the highest median GFLOP/s printed as a fraction of the peak */
} options;

int bench_parse_shapes(const char *s, int64_t (*out)[3], int cap) {
  int n = 0;
  while (*s) {
    char *end;
    long long m = strtoll(s, &end, 10), nn = m, k = m;
    if (end == s || m <= 0 || n >= cap) return -1;
    if (*end == 'x') {
      nn = strtoll(end + 1, &end, 10);
      if (*end != 'x') return -1;
      k = strtoll(end + 1, &end, 10);
      if (nn <= 0 || k <= 0) return -1;
    }
    out[n][0] = m, out[n][1] = nn, out[n][2] = k;
    n++;
    if (*end == ',') end++;
    else if (*end != '\0') return -1;
    s = end;
  }
  return n;
}

static int parse_sizes(const char *s, options *o) {
  int64_t t[64][3];
  int n = bench_parse_shapes(s, t, 64);
  if (n < 0) return -1;
  for (int i = 0; i < n; i++) o->shapes[i] = (shape){t[i][0], t[i][1], t[i][2]};
  o->nshapes = n;
  return 0;
}

static void usage(FILE *f) {
  fprintf(f, "usage: clai bench gemm [--sizes N|MxNxK,...] [--batch B] [--trans nn|nt|tn|tt] [--dtype f32|f16]\n"
             "                       [--samples S] [--min-time SECONDS] [--no-ref] [--json]\n"
             "  GFLOP/s of C = op(A) op(B), data on the device, median (min-max) of S timings after a warm-up,\n"
             "  each timing at least --min-time long; beside OpenBLAS (if installed) and CLBlast (if built in),\n"
             "  taken in turns: each side warms up, then libclai, OpenBLAS and CLBlast time once each, S times over.\n"
             "  ratio: libclai / the reference, the median of the S per-turn ratios (a turn's timings follow one\n"
             "  another, so a shared machine's drifting load weighs on both alike), not the ratio of the medians.\n"
             "  OpenBLAS runs the best kernels it has for this CPU, chosen by the bench, unless OPENBLAS_CORETYPE is\n"
             "  set (its own choice can fall far below a CPU newer than its release).\n"
             "       clai bench ops --help   GB/s of elementwise ops, softmax, layernorm and reductions\n"
             "       clai bench train --help training samples/s beside PyTorch\n"
             "       mpirun -np N clai bench allreduce   time to sum the models' gradients over N ranks\n"
             "       clai bench llm [--peer DIR]          prompt and generation tokens/s of a GGUF Llama, beside\n"
             "                                            llama.cpp's llama-bench (clai bench llm --help)\n");
}

#define CHECK(call)                                                                                  \
  do {                                                                                               \
    clai_status st_ = (call);                                                                        \
    if (st_ != CLAI_OK) {                                                                            \
      fprintf(stderr, "clai bench: %s: %s: %s\n", #call, clai_status_name(st_), clai_errmsg(ctx));   \
      goto done;                                                                                     \
    }                                                                                                \
  } while (0)

/* The sides of `clai bench gemm`: libclai, then the references */
enum { SIDE_CLAI, SIDE_OPENBLAS, SIDE_CLBLAST, NSIDES };

static int bench_one(clai_context *ctx, options *o, shape sh, const char *device_name) {
  int rc = 1;
  clai_tensor *a = NULL, *b = NULL, *c = NULL;
  float *host = NULL;
  bench_side side[NSIDES];
  bench_ref_result ref[NSIDES]; /* the references' results; ref[SIDE_CLAI] unused */
  int have[NSIDES] = {0};       /* the side is measured */
  memset(side, 0, sizeof side);
  memset(ref, 0, sizeof ref);
  int64_t sa[3] = {o->batch, o->trans_a ? sh.k : sh.m, o->trans_a ? sh.m : sh.k};
  int64_t sb[3] = {o->batch, o->trans_b ? sh.n : sh.k, o->trans_b ? sh.k : sh.n};
  int64_t sc[3] = {o->batch, sh.m, sh.n};
  int nd = o->batch > 1 ? 3 : 2, off = o->batch > 1 ? 0 : 1;
  CHECK(clai_tensor_init(ctx, &a, o->dtype, nd, sa + off));
  CHECK(clai_tensor_init(ctx, &b, o->dtype, nd, sb + off));
  CHECK(clai_tensor_init(ctx, &c, CLAI_DTYPE_F32, nd, sc + off));
  int64_t na = clai_tensor_numel(a), nb = clai_tensor_numel(b);
  int64_t most = na > nb ? na : nb;
  host = malloc((size_t)most * sizeof *host);
  if (host == NULL) goto done;
  for (int64_t i = 0; i < most; i++) host[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
  /* f16 tensors are written through an f32 staging tensor and clai_copy, which converts on the device. */
  clai_tensor *stage = NULL;
  int64_t flat[1] = {most};
  CHECK(clai_tensor_init(ctx, &stage, CLAI_DTYPE_F32, 1, flat));
  CHECK(clai_tensor_write(stage, host, (size_t)most * sizeof *host));
  clai_tensor *sv = NULL;
  CHECK(clai_tensor_reshape(stage, &sv, 1, (int64_t[]){most}));
  clai_tensor *part = NULL;
  CHECK(clai_tensor_slice(sv, &part, 0, 0, na, 1));
  clai_tensor *pa = NULL;
  CHECK(clai_tensor_reshape(part, &pa, nd, sa + off));
  CHECK(clai_copy(ctx, a, pa));
  clai_tensor_free(pa);
  clai_tensor_free(part);
  CHECK(clai_tensor_slice(sv, &part, 0, 0, nb, 1));
  CHECK(clai_tensor_reshape(part, &pa, nd, sb + off));
  CHECK(clai_copy(ctx, b, pa));
  clai_tensor_free(pa);
  clai_tensor_free(part);
  clai_tensor_free(sv);
  clai_tensor_free(stage);

  char kernel[256];
  CHECK(clai_matmul_describe(ctx, c, a, o->trans_a, b, o->trans_b, kernel, sizeof kernel));
  clai_run run = {ctx, a, b, c, o->trans_a, o->trans_b};
  double flop = 2.0 * (double)sh.m * (double)sh.n * (double)sh.k * (double)o->batch;
  side[SIDE_CLAI] = (bench_side){run_clai, finish_clai, NULL, &run, 0};
  have[SIDE_CLAI] = 1;
  if (o->refs) {
    have[SIDE_OPENBLAS] = bench_openblas_prepare(sh.m, sh.n, sh.k, o->batch, o->trans_a, o->trans_b,
                                                 &side[SIDE_OPENBLAS], &ref[SIDE_OPENBLAS]) == 0;
    have[SIDE_CLBLAST] = bench_clblast_prepare(device_name, sh.m, sh.n, sh.k, o->batch, o->trans_a, o->trans_b,
                                               &side[SIDE_CLBLAST], &ref[SIDE_CLBLAST]) == 0;
  }
  /* Each side warms up and sizes its timings, then they take turns, one timing each: the load of a shared
   * machine drifts over seconds, and the ratio of two timings taken in the same turn sees the same load on
   * both sides, where the ratio of two medians taken one side after the other need not. A reference that
   * fails is dropped from the shape; libclai failing ends the bench. */
  static const char *const names[NSIDES] = {"libclai", "OpenBLAS", "CLBlast"};
  double g[NSIDES][64];
  for (int turn = -1; turn < o->samples; turn++) { /* turn -1: the warm-ups and sizing runs */
    for (int j = 0; j < NSIDES; j++) {
      if (!have[j]) continue;
      bench_settle();
      int e = turn < 0 ? bench_side_calibrate(&side[j], o->min_time) : bench_side_sample(&side[j], flop, &g[j][turn]);
      if (e != 0 && j == SIDE_CLAI) {
        fprintf(stderr, "clai bench: clai_matmul: %s: %s\n", clai_status_name((clai_status)e), clai_errmsg(ctx));
        goto done;
      }
      if (e != 0) {
        snprintf(ref[j].why, sizeof ref[j].why, "%s returned status %d", names[j], e);
        have[j] = 0;
        bench_side_release(&side[j]);
      }
    }
  }
  /* the ratios first: bench_median_min_max sorts the timings */
  double ratio[NSIDES], per_turn[64], unused0, unused1, med, mn, mx;
  for (int j = SIDE_OPENBLAS; j < NSIDES; j++) {
    if (!have[j]) continue;
    for (int s = 0; s < o->samples; s++) per_turn[s] = g[SIDE_CLAI][s] / g[j][s];
    bench_median_min_max(per_turn, o->samples, &ratio[j], &unused0, &unused1);
    bench_median_min_max(g[j], o->samples, &ref[j].median, &ref[j].min, &ref[j].max);
  }
  bench_median_min_max(g[SIDE_CLAI], o->samples, &med, &mn, &mx);
  const bench_ref_result ob = ref[SIDE_OPENBLAS], cb = ref[SIDE_CLBLAST];
  const int have_ob = have[SIDE_OPENBLAS], have_cb = have[SIDE_CLBLAST];
  if (med > o->top) o->top = med;
  if (have_ob && o->cpu && ob.median > o->top) o->top = ob.median;
  if (o->json) {
    printf("{\"m\": %lld, \"n\": %lld, \"k\": %lld, \"batch\": %lld, \"dtype\": \"%s\", \"trans_a\": %d, "
           "\"trans_b\": %d, \"gflops\": %.6g, \"gflops_min\": %.6g, \"gflops_max\": %.6g, \"kernel\": \"%s\"",
           (long long)sh.m, (long long)sh.n, (long long)sh.k, (long long)o->batch, clai_dtype_name(o->dtype),
           o->trans_a, o->trans_b, med, mn, mx, kernel);
    if (o->peak > 0) printf(", \"peak_gflops\": %.6g, \"peak_fraction\": %.4g", o->peak, med / o->peak);
    if (have_ob) printf(", \"openblas_gflops\": %.6g, \"openblas_ratio\": %.4g", ob.median, ratio[SIDE_OPENBLAS]);
    if (have_ob && o->peak > 0 && o->cpu) printf(", \"openblas_peak_fraction\": %.4g", ob.median / o->peak);
    if (have_cb) printf(", \"clblast_gflops\": %.6g, \"clblast_ratio\": %.4g", cb.median, ratio[SIDE_CLBLAST]);
    if (have_cb && o->peak > 0) printf(", \"clblast_peak_fraction\": %.4g", cb.median / o->peak);
    printf(", \"device\": \"%s\"}\n", device_name);
  } else {
    printf("%6lld %6lld %6lld %5lld %-4s %d%d %8.1f (%6.1f-%6.1f)", (long long)sh.m, (long long)sh.n,
           (long long)sh.k, (long long)o->batch, clai_dtype_name(o->dtype), o->trans_a, o->trans_b, med, mn, mx);
    if (o->peak > 0) printf(" %4.0f%%", 100.0 * med / o->peak);
    else printf(" %5s", "-");
    if (have_ob) printf(" %9.1f", ob.median);
    else printf(" %9s", "-");
    if (have_ob && o->peak > 0 && o->cpu) printf(" %4.0f%%", 100.0 * ob.median / o->peak);
    else printf(" %5s", "");
    if (have_ob) printf(" %6.2fx", ratio[SIDE_OPENBLAS]);
    else printf(" %7s", "");
    if (have_cb) printf(" %9.1f %6.2fx", cb.median, ratio[SIDE_CLBLAST]);
    else printf(" %9s %7s", "-", "");
    printf("  %s\n", kernel);
  }
  fflush(stdout);
  if (o->refs && !o->json && !o->said_refs) {
    o->said_refs = 1;
    fprintf(stderr, "references: OpenBLAS: %s; CLBlast: %s\n%s\n", have_ob ? ob.what : ob.why,
            have_cb ? cb.what : cb.why, bench_openblas_kernels());
  }
  rc = 0;
done:
  for (int j = 0; j < NSIDES; j++) bench_side_release(&side[j]);
  free(host);
  clai_tensor_free(a);
  clai_tensor_free(b);
  clai_tensor_free(c);
  return rc;
}

/* An option of bench_gemm without its value (val NULL) or with a bad one: says which, then the usage; 2. */
static int bad_value(const char *arg, const char *val) {
  if (val == NULL)
    fprintf(stderr, "clai bench gemm: %s needs a value\n", arg);
  else
    fprintf(stderr, "clai bench gemm: bad %s '%s'\n", arg, val);
  usage(stderr);
  return 2;
}

static int bench_gemm(int argc, char **argv) {
  options o;
  memset(&o, 0, sizeof o);
  parse_sizes("256,512,1024,2048,1000,1023,777", &o);
  o.batch = 1;
  o.dtype = CLAI_DTYPE_F32;
  o.samples = 7;
  o.refs = 1;
  o.min_time = 0.05;
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(arg, "--json") == 0) {
      o.json = 1;
    } else if (strcmp(arg, "--no-ref") == 0) {
      o.refs = 0;
    } else if (strcmp(arg, "--sizes") == 0) {
      if (val == NULL || parse_sizes(val, &o) != 0 || o.nshapes == 0) return bad_value(arg, val);
      i++;
    } else if (strcmp(arg, "--batch") == 0) {
      if (val == NULL) return bad_value(arg, val);
      o.batch = atoll(val);
      i++;
    } else if (strcmp(arg, "--samples") == 0) {
      if (val == NULL) return bad_value(arg, val);
      o.samples = atoi(val);
      i++;
    } else if (strcmp(arg, "--min-time") == 0) {
      if (val == NULL) return bad_value(arg, val);
      o.min_time = atof(val);
      i++;
    } else if (strcmp(arg, "--trans") == 0) {
      if (val == NULL || strlen(val) != 2 || strspn(val, "nt") != 2) return bad_value(arg, val);
      o.trans_a = val[0] == 't';
      o.trans_b = val[1] == 't';
      i++;
    } else if (strcmp(arg, "--dtype") == 0) {
      if (val == NULL || (strcmp(val, "f32") != 0 && strcmp(val, "f16") != 0)) return bad_value(arg, val);
      o.dtype = strcmp(val, "f16") == 0 ? CLAI_DTYPE_F16 : CLAI_DTYPE_F32;
      i++;
    } else {
      fprintf(stderr, "clai bench gemm: unknown argument '%s'\n", arg);
      usage(stderr);
      return 2;
    }
  }
  if (o.batch < 1 || o.samples < 1 || o.samples > 64 || !(o.min_time >= 0)) {
    fprintf(stderr, "clai bench gemm: --batch must be at least 1, --samples from 1 to 64, --min-time at least 0 "
                    "(got %lld, %d, %g)\n", (long long)o.batch, o.samples, o.min_time);
    usage(stderr);
    return 2;
  }
  bench_openblas_choose_kernels(); /* before the OpenCL context starts threads (it forks) */
  char err[4096];
  clai_context *ctx = NULL;
  clai_status st = clai_context_init_ex(&ctx, NULL, err, sizeof err);
  if (st != CLAI_OK) {
    fprintf(stderr, "clai bench: %s: %s\n", clai_status_name(st), err);
    return 1;
  }
  clai_device_info dev;
  clai_context_device_info(ctx, -1, &dev);
  o.cpu = dev.type == CLAI_DEVICE_CPU;
  if (!o.json) printf("device: %s / %s (driver %s)\n", dev.platform, dev.name, dev.driver_version);
  bench_ref_result pk;
  if (bench_peak(dev.name, o.samples, o.min_time, &pk) == 0) {
    /* the best of its timings: a peak is what the machine can reach, and a shared machine's noise only ever
     * slows a timing down (the median ran 3-6% below the best here, and below OpenBLAS's figures) */
    o.peak = pk.max;
    if (!o.json)
      printf("peak: %.1f GFLOP/s (the best of %d timings, median %.1f, min %.1f; %s); %%peak: each figure as a "
             "fraction of it\n", pk.max, o.samples, pk.median, pk.min, pk.what);
  } else if (!o.json) {
    printf("peak: not measured (%s)\n", pk.why);
  }
  if (!o.json && o.refs)
    printf("ratio: libclai / the reference, the median of the per-turn ratios (the sides take turns, one timing "
           "each)\n");
  if (!o.json)
    printf("%6s %6s %6s %5s %-4s %2s %8s %15s %5s %9s %5s %7s %9s %7s  %s\n", "M", "N", "K", "batch", "type", "tr",
           "GFLOP/s", "(min-max)", "%peak", "OpenBLAS", "%peak", "ratio", "CLBlast", "ratio", "kernel");
  int rc = 0;
  for (int i = 0; i < o.nshapes && rc == 0; i++) rc = bench_one(ctx, &o, o.shapes[i], dev.name);
  if (!o.json && o.peak > 0 && o.top > 1.02 * o.peak)
    printf("note: the best figure above is %.0f%% of the peak measured first, so the machine ran faster later "
           "than then (shared or throttled): read %%peak with care\n", 100.0 * o.top / o.peak);
  clai_context_free(ctx);
  return rc;
}

int clai_tool_bench(int argc, char **argv) {
  if (argc >= 1 && strcmp(argv[0], "gemm") == 0) return bench_gemm(argc - 1, argv + 1);
  if (argc >= 1 && strcmp(argv[0], "ops") == 0) return bench_ops(argc - 1, argv + 1);
  if (argc >= 1 && strcmp(argv[0], "train") == 0) return bench_train(argc - 1, argv + 1);
  if (argc >= 1 && strcmp(argv[0], "allreduce") == 0) return bench_allreduce(argc - 1, argv + 1);
  if (argc >= 1 && strcmp(argv[0], "llm") == 0) return llm_bench_main(argc, argv);
  usage(argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) ? stdout : stderr);
  return argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) ? 0 : 2;
}
