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

/* Reads path into meta and the tensors, which must exist with the shapes stored (matched by name). The file
 * is checked (magic, version, lengths, a checksum of everything) before any tensor is written. Returns 0,
 * 1 if the file does not exist, or -1 with a message in err. */
int ckpt_load(clai_context *ctx, const char *path, ckpt_meta *meta, const ckpt_entry *e, int n, char *err,
              size_t errsize);

#endif
