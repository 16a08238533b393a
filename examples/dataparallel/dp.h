/* dp.h - data-parallel glue for libclai applications: a group of ranks (one device each) that sum gradients.
 *
 * libclai stays a single-process library; this is an application of its public API (DESIGN.md), shared by
 * the Fashion-MNIST trainer and reusable by any program with its own training loop:
 *
 *   dp_comm *comm = ...;                       // dp_mpi_init (one process per device, under mpirun),
 *                                              // dp_threads_comm (one thread per device), or dp_single
 *   ... each rank: forward and backward on its share of the batch, into one flat f32 gradient tensor ...
 *   dp_allreduce(comm, grads, err, sizeof err) // grads = the sum over ranks, bitwise the same on every rank
 *   ... the same optimizer step on every rank ...
 *
 * A rank computes its share scaled so that the sum is the global-batch mean (local mean * local rows /
 * global rows). dp_reducer overlaps the reduction with the rest of the backward pass: the application says
 * when a tail of the gradient is final (the backward pass goes from the last layer to the first), the
 * reducer copies it into a staging tensor on the device and maps that asynchronously, and the host sums it
 * across ranks while the device computes the earlier layers' gradients.
 *
 * Backends: MPI (dp-mpi.c, built when configure finds Open MPI; MPI_Allreduce on mapped device memory, so
 * no copy on devices that share host memory) and threads in one process (dp.c: a sum in host memory in rank
 * order, one slice per thread). Every collective is called by every rank in the same order; each returns 0,
 * or -1 with a message in err when the group cannot go on (a rank failed: dp_fail). With MPI a failing rank
 * ends the job (MPI_Abort) after printing why, so no rank waits forever. Sums are deterministic: for a fixed
 * number of ranks, the same inputs give the same bits, run after run. */
#ifndef CLAI_EXAMPLE_DP_H
#define CLAI_EXAMPLE_DP_H

#include <stddef.h>
#include <stdint.h>

#include <clai.h>

typedef struct dp_comm dp_comm;

/* ---- groups ---------------------------------------------------------------------------------------------- */

/* A group of one (no communication): what a plain run uses. Never fails; dp_comm_free releases it. */
dp_comm *dp_single(void);

/* 1 when this binary was built with MPI, else 0. */
int dp_mpi_built(void);
/* 1 when the process looks started by mpirun/srun (Open MPI's or PMIx's rank variables are set). */
int dp_mpi_launched(void);
/* MPI_Init and a group of MPI_COMM_WORLD. Returns 0, or -1 with a message (no MPI in this build, MPI_Init
 * failed). dp_comm_free calls MPI_Finalize. */
int dp_mpi_init(int *argc, char ***argv, dp_comm **out, char *err, size_t cap);

/* n ranks as n threads of one process: dp_threads_new makes the shared state, dp_threads_comm(th, r) the
 * handle of rank r (one per thread; free each with dp_comm_free, then the state with dp_threads_free).
 * NULL when out of memory or n < 1. */
typedef struct dp_threads dp_threads;
dp_threads *dp_threads_new(int n);
dp_comm *dp_threads_comm(dp_threads *th, int rank);
void dp_threads_free(dp_threads *th);

/* Releases a handle (MPI: MPI_Finalize). NULL: no-op. */
void dp_comm_free(dp_comm *c);

int dp_rank(const dp_comm *c);
int dp_size(const dp_comm *c);
/* This rank's place among the ranks of its machine, and how many there are (threads: all of them). */
int dp_local_rank(const dp_comm *c);
int dp_local_size(const dp_comm *c);
/* "mpi", "threads" or "single". */
const char *dp_backend(const dp_comm *c);

/* ---- collectives on host memory -------------------------------------------------------------------------- */

/* In place: buf[i] = the sum over ranks of buf[i]. */
int dp_sum_f32(dp_comm *c, float *buf, size_t n, char *err, size_t cap);
int dp_sum_f64(dp_comm *c, double *buf, size_t n, char *err, size_t cap);
/* buf (bytes) of rank root to every rank. */
int dp_bcast(dp_comm *c, void *buf, size_t bytes, int root, char *err, size_t cap);
/* all[r * bytes .. ] = mine of rank r, on every rank. */
int dp_allgather(dp_comm *c, const void *mine, void *all, size_t bytes, char *err, size_t cap);
/* Every rank says whether it can go on (ok) and why not (why). Returns 0 when all can; else -1 on every rank,
 * with err = "rank R: WHY" of the lowest failing rank. For the points where ranks may fail apart (no device,
 * bad data, a bad checkpoint), so that all stop together with the reason instead of waiting. */
int dp_agree(dp_comm *c, int ok, const char *why, char *err, size_t cap);
/* A rank that cannot go on outside dp_agree: MPI prints why and ends the whole job (MPI_Abort); threads mark
 * the group failed, so every collective of the other ranks returns -1 with this message. */
void dp_fail(dp_comm *c, const char *why);

/* ---- gradients on the device ----------------------------------------------------------------------------- */

/* One call: the dense f32 tensor flat (any device, contiguous) becomes the sum over ranks of flat, through
 * a host mapping (no copy where the device shares host memory). Waits for the ops that write flat; returns
 * with the result enqueued before any op enqueued later. */
int dp_allreduce(dp_comm *c, clai_tensor *flat, char *err, size_t cap);

/* The overlapped form: dp_reducer_init for the flat gradient (once; it makes a staging tensor of flat's
 * size), then each step: dp_reducer_ready(r, from) as soon as elements [from, end) of flat are final (call it
 * with decreasing `from`, each call adding [from, previous from) in pieces of at most bucket_bytes, 0: 4 MiB),
 * and dp_reducer_finish(r), which sums whatever was not handed over yet and waits for all of it: flat then
 * holds the sum over ranks, as after dp_allreduce (with threads the same bits whatever the buckets; with
 * MPI the same bits run after run for a given number of ranks and bucket size). */
typedef struct dp_reducer dp_reducer;
int dp_reducer_init(dp_comm *c, clai_tensor *flat, size_t bucket_bytes, dp_reducer **out, char *err, size_t cap);
int dp_reducer_ready(dp_reducer *r, int64_t from);
int dp_reducer_finish(dp_reducer *r);
/* The message of the reducer's last failure. */
const char *dp_reducer_error(const dp_reducer *r);
void dp_reducer_free(dp_reducer *r);

#endif
