/* dp-mpi.c - the MPI backend of dp.h (Open MPI): one process per device, the collectives of MPI_COMM_WORLD,
 * the ranks of one machine found with MPI_Comm_split_type(MPI_COMM_TYPE_SHARED). Without MPI in the build
 * (configure --with-mpi=no, or libopenmpi-dev missing) dp_mpi_init says so and fails.
 *
 * Counts are int in MPI: longer buffers go in pieces of at most 2^30 elements, which changes nothing in
 * the result (the sum is elementwise). A rank that fails calls MPI_Abort after printing why, which ends
 * every rank of the job: the others are never left waiting in a collective. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp-internal.h"

int dp_mpi_launched(void) {
  static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    if (getenv(vars[i]) != NULL) return 1;
  return 0;
}

#if HAVE_MPI
#include <mpi.h>

#define PIECE ((size_t)1 << 30)

int dp_mpi_built(void) { return 1; }

static int mpi_err(int rc, const char *what, char *err, size_t cap) {
  char s[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  MPI_Error_string(rc, s, &len);
  dp__seterr(err, cap, "%s failed: %s", what, s);
  return -1;
}

static int mpi_sum(void *buf, size_t n, MPI_Datatype type, size_t es, char *err, size_t cap) {
  for (size_t at = 0; at < n; at += PIECE) {
    size_t k = n - at < PIECE ? n - at : PIECE;
    int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + at * es, (int)k, type, MPI_SUM, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_err(rc, "MPI_Allreduce", err, cap);
  }
  return 0;
}

static int m_sum_f32(dp_comm *c, float *buf, size_t n, char *err, size_t cap) {
  (void)c;
  return mpi_sum(buf, n, MPI_FLOAT, sizeof(float), err, cap);
}
static int m_sum_f64(dp_comm *c, double *buf, size_t n, char *err, size_t cap) {
  (void)c;
  return mpi_sum(buf, n, MPI_DOUBLE, sizeof(double), err, cap);
}

static int m_bcast(dp_comm *c, void *buf, size_t bytes, int root, char *err, size_t cap) {
  (void)c;
  for (size_t at = 0; at < bytes; at += PIECE) {
    size_t k = bytes - at < PIECE ? bytes - at : PIECE;
    int rc = MPI_Bcast((char *)buf + at, (int)k, MPI_BYTE, root, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_err(rc, "MPI_Bcast", err, cap);
  }
  return 0;
}

static int m_allgather(dp_comm *c, const void *mine, void *all, size_t bytes, char *err, size_t cap) {
  (void)c;
  if (bytes > PIECE) {
    dp__seterr(err, cap, "dp_allgather: %zu bytes per rank is more than this backend sends at once", bytes);
    return -1;
  }
  int rc = MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
  return rc == MPI_SUCCESS ? 0 : mpi_err(rc, "MPI_Allgather", err, cap);
}

static void m_fail(dp_comm *c, const char *why) {
  fprintf(stderr, "rank %d of %d: %s; ending every rank\n", c->rank, c->size, why);
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
}

static void m_free(dp_comm *c) {
  int fin = 0;
  MPI_Finalized(&fin);
  if (!fin) MPI_Finalize();
  free(c);
}

static const dp_ops MPI_OPS = {"mpi", m_sum_f32, m_sum_f64, m_bcast, m_allgather, m_fail, m_free};

int dp_mpi_init(int *argc, char ***argv, dp_comm **out, char *err, size_t cap) {
  *out = NULL;
  int rc = MPI_Init(argc, argv);
  if (rc != MPI_SUCCESS) return mpi_err(rc, "MPI_Init", err, cap);
  /* Errors come back as codes, so a failed collective is reported like any other failure. */
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  dp_comm *c = calloc(1, sizeof *c);
  if (c == NULL) {
    dp__seterr(err, cap, "out of host memory");
    MPI_Abort(MPI_COMM_WORLD, 1);
    return -1;
  }
  c->ops = &MPI_OPS;
  MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &c->size);
  MPI_Comm node;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
    MPI_Comm_rank(node, &c->local_rank);
    MPI_Comm_size(node, &c->local_size);
    MPI_Comm_free(&node);
  } else {
    c->local_rank = 0, c->local_size = 1;
  }
  *out = c;
  return 0;
}

#else

int dp_mpi_built(void) { return 0; }

int dp_mpi_init(int *argc, char ***argv, dp_comm **out, char *err, size_t cap) {
  (void)argc, (void)argv;
  *out = NULL;
  dp__seterr(err, cap, "this build has no MPI support (install Debian's libopenmpi-dev and run configure again)");
  return -1;
}

#endif
