/* bench-allreduce.c - `clai bench allreduce`: the time to sum the Fashion-MNIST models' flat gradients over
 * the ranks of an mpirun job (examples/dataparallel), for the scaling figures of BENCHMARKS.md. Each size
 * is timed two ways: dp_sum_f32 on host memory (MPI_Allreduce alone) and dp_allreduce on a device tensor
 * (map, MPI_Allreduce, unmap, and the wait for the unmap: what a training step pays). Every timing starts
 * after a one-double sum that lines the ranks up; rank 0 prints the median of --reps timings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clai.h>

#include "bench.h"
#include "dp.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int bench_allreduce(int argc, char **argv) {
  int reps = 20;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = atoi(argv[++i]);
      if (reps < 1 || reps > 100000) {
        fprintf(stderr, "clai bench allreduce: --reps wants 1 to 100000\n");
        return 2;
      }
    } else {
      FILE *f = strcmp(argv[i], "--help") == 0 ? stdout : stderr;
      fprintf(f, "usage: mpirun -np N clai bench allreduce [--reps N]\n"
                 "  the time to sum the MLP's (235146 floats) and the CNN's (3274634 floats) gradients over N ranks\n");
      return f == stdout ? 0 : 2;
    }
  }
  char err[4096];
  dp_comm *comm = NULL;
  if (dp_mpi_launched() && dp_mpi_built()) {
    if (dp_mpi_init(&argc, &argv, &comm, err, sizeof err) != 0) {
      fprintf(stderr, "clai bench allreduce: %s\n", err);
      return 1;
    }
  } else {
    comm = dp_single();
  }
  const int rank = dp_rank(comm), n = dp_size(comm);
  clai_context *ctx = NULL;
  clai_status st = clai_context_init_ex(&ctx, NULL, err, sizeof err);
  int ok = st == CLAI_OK;
  char why[4200];
  snprintf(why, sizeof why, "no OpenCL context: %s: %s", clai_status_name(st), err);
  if (dp_agree(comm, ok, why, err, sizeof err) != 0) {
    fprintf(stderr, "clai bench allreduce: %s\n", err);
    clai_context_free(ctx);
    dp_comm_free(comm);
    return 1;
  }
  static const struct {
    const char *name;
    int64_t n;
  } sizes[] = {{"mlp", 235146}, {"cnn", 3274634}};
  double *t = calloc((size_t)reps, sizeof *t);
  int rc = t == NULL;
  if (rank == 0)
    printf("ranks %d (%s); median of %d: host = MPI_Allreduce on host memory, device = dp_allreduce of a device "
           "tensor (map, sum, unmap)\n",
           n, dp_backend(comm), reps);
  for (size_t s = 0; rc == 0 && s < sizeof sizes / sizeof sizes[0]; s++) {
    const int64_t ne = sizes[s].n;
    float *host = malloc((size_t)ne * sizeof(float));
    clai_tensor *g = NULL;
    if (host == NULL || clai_tensor_init(ctx, &g, CLAI_DTYPE_F32, 1, &ne) != CLAI_OK || clai_fill(ctx, g, 1.0) != CLAI_OK) {
      dp_fail(comm, "cannot allocate the gradients");
      rc = 1;
    }
    for (int64_t i = 0; rc == 0 && i < ne; i++) host[i] = 1.0f;
    double med[2] = {0, 0};
    for (int how = 0; rc == 0 && how < 2; how++) {
      for (int r = 0; rc == 0 && r <= reps; r++) {
        double one = 0;
        if (dp_sum_f64(comm, &one, 1, err, sizeof err) != 0) rc = 1;
        double t0 = bench_now();
        if (rc == 0 && how == 0) rc = dp_sum_f32(comm, host, (size_t)ne, err, sizeof err) != 0;
        if (rc == 0 && how == 1) rc = dp_allreduce(comm, g, err, sizeof err) != 0 || clai_sync(ctx) != CLAI_OK;
        if (r > 0) t[r - 1] = bench_now() - t0; /* the first is a warm-up */
      }
      if (rc == 0) {
        qsort(t, (size_t)reps, sizeof *t, cmp_double);
        med[how] = t[reps / 2];
      }
    }
    if (rc == 0 && rank == 0) {
      const double mb = (double)ne * 4 / 1e6;
      printf("%-4s %8lld floats %7.2f MB   host %9.3f ms   device %9.3f ms   (%.2f GB/s of gradient through the device path)\n",
             sizes[s].name, (long long)ne, mb, med[0] * 1e3, med[1] * 1e3, mb / 1e3 / med[1]);
    }
    if (rc != 0) fprintf(stderr, "clai bench allreduce: rank %d: %s\n", rank, err);
    free(host);
    clai_tensor_free(g);
  }
  free(t);
  clai_context_free(ctx);
  dp_comm_free(comm);
  return rc;
}
