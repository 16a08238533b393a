/* checkpoint.h - saving and restoring training state (named tensors plus a few integers) in one file. */
#ifndef CLAI_EXAMPLE_CHECKPOINT_H
#define CLAI_EXAMPLE_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include <clai.h>

/* The scalars that travel with the tensors. */
typedef struct ckpt_meta {
  char model[16];     /* "mlp" or "cnn" */
  uint64_t seed;
  int64_t epoch;      /* epochs completed */
  int64_t step;       /* optimizer steps taken (Adam's t) */
  int64_t batch;
} ckpt_meta;

typedef struct ckpt_entry {
  const char *name;
  clai_tensor *t;     /* f32 */
} ckpt_entry;

/* Writes meta and the tensors to `path` through a temporary file in the same directory, flushed and then
 * renamed over path, so a crash leaves either the old checkpoint or the new one, never half of one.
 * Returns 0, or -1 with a message in err. */
int ckpt_save(clai_context *ctx, const char *path, const ckpt_meta *meta, const ckpt_entry *e, int n, char *err,
              size_t errsize);

/* What the running trainer expects of a checkpoint it resumes from. */
typedef struct ckpt_expect {
  const char *model;        /* the model name the file must hold */
  uint64_t seed;            /* the seed and the batch size it must have been written with */
  int64_t batch;
  int64_t max_epoch;        /* the most completed epochs a checkpoint may claim */
  int64_t steps_per_epoch;  /* optimizer steps per epoch: the step count must be epoch * this */
} ckpt_expect;

/* Reads path into meta and the tensors e[0..n), which must exist with the names, order and shapes stored.
 * Nothing in the file is trusted: the magic, the checksum of everything, then every field in turn (the
 * model name against want->model, seed and batch against want's, epoch in 0..want->max_epoch, step equal to
 * epoch * want->steps_per_epoch, the tensor count, each name, ndim and shape against e[], each data length
 * against the bytes left, and every value finite) is checked before any tensor is written. A failure's
 * message starts with path and names the field or tensor at fault. Returns 0, 1 if the file does not
 * exist (nothing written), or -1 with a message in err (no tensor and nothing in *meta written). */
int ckpt_load(clai_context *ctx, const char *path, const ckpt_expect *want, ckpt_meta *meta, const ckpt_entry *e,
              int n, char *err, size_t errsize);

#endif
