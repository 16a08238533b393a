/* mnist.c - the IDX format (big-endian magic 0x00000803 for images, 0x00000801 for labels, then the sizes
 * of each dimension, then the bytes), read through zlib from the .gz files as distributed. */
#include "mnist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define PACKAGE_HINT "install Debian's dataset-fashion-mnist package, or give the directory with --data"

/* Reads exactly n bytes; 0 on success, -1 at the end of the data, -2 on damaged gzip data (gzerror says). */
static int read_exact(gzFile f, void *buf, size_t n) {
  unsigned char *p = buf;
  while (n > 0) {
    unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
    int got = gzread(f, p, chunk);
    if (got < 0) return -2;
    if (got == 0) return -1;
    p += got;
    n -= (size_t)got;
  }
  return 0;
}

/* The message of a damaged gzip stream (a bad CRC, an invalid deflate block). */
static const char *gz_why(gzFile f) {
  int code = Z_OK;
  const char *m = gzerror(f, &code);
  return m != NULL && *m != '\0' ? m : "damaged compressed data";
}

static uint32_t be32(const unsigned char *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* Reads one IDX file with `ndim` dims and magic `magic`; dims out in dims[], data malloc'd into *data (data
 * NULL: the header only). A dimension whose `expect` entry is not 0 must have that size. */
static int read_idx(const char *path, uint32_t magic, int ndim, const uint32_t *expect, uint32_t *dims, uint8_t **data,
                    char *err, size_t errsize) {
  if (data != NULL) *data = NULL;
  gzFile f = gzopen(path, "rb");
  if (f == NULL) {
    snprintf(err, errsize, "%s: %s (%s)", path, strerror(errno ? errno : ENOENT), PACKAGE_HINT);
    return -1;
  }
  unsigned char head[16];
  int rc = -1;
  int got = read_exact(f, head, 4 + 4 * (size_t)ndim);
  if (got == -2) {
    snprintf(err, errsize, "%s: %s (a damaged .gz; %s)", path, gz_why(f), PACKAGE_HINT);
    goto done;
  }
  if (got != 0) {
    snprintf(err, errsize, "%s: shorter than an IDX header (truncated or not gzip'd IDX; %s)", path, PACKAGE_HINT);
    goto done;
  }
  if (be32(head) != magic) {
    snprintf(err, errsize, "%s: IDX magic is 0x%08x, expected 0x%08x (not the file it should be; %s)", path,
             be32(head), magic, PACKAGE_HINT);
    goto done;
  }
  uint64_t total = 1;
  for (int i = 0; i < ndim; i++) {
    dims[i] = be32(head + 4 + 4 * i);
    if (expect[i] != 0 && dims[i] != expect[i]) {
      snprintf(err, errsize, "%s: dimension %d is %u, expected %u (%s)", path, i, dims[i], expect[i], PACKAGE_HINT);
      goto done;
    }
    if (dims[i] == 0 || dims[i] > 10000000u) {
      snprintf(err, errsize, "%s: dimension %d is %u, which is not plausible (%s)", path, i, dims[i], PACKAGE_HINT);
      goto done;
    }
    total *= dims[i];
  }
  if (total > ((uint64_t)1 << 32)) {
    snprintf(err, errsize, "%s: %llu bytes of data is more than this reader takes", path, (unsigned long long)total);
    goto done;
  }
  if (data == NULL) {
    rc = 0;
    goto done;
  }
  /* The buffer grows with the data actually read, so a header that promises gigabytes the file does not
   * hold costs no more memory than the file. */
  size_t have = 0, cap = 0;
  while (have < total) {
    if (have == cap) {
      size_t next = cap == 0 ? (size_t)1 << 20 : cap * 2;
      if (next > total) next = (size_t)total;
      uint8_t *p = realloc(*data, next);
      if (p == NULL) {
        snprintf(err, errsize, "%s: out of memory for %llu bytes", path, (unsigned long long)next);
        goto done;
      }
      *data = p, cap = next;
    }
    got = read_exact(f, *data + have, cap - have);
    if (got == -2) {
      snprintf(err, errsize, "%s: %s (a damaged .gz; %s)", path, gz_why(f), PACKAGE_HINT);
      goto done;
    }
    if (got != 0) {
      snprintf(err, errsize, "%s: the header promises %llu bytes of data but the file ends before (truncated; %s)",
               path, (unsigned long long)total, PACKAGE_HINT);
      goto done;
    }
    have = cap;
  }
  unsigned char extra;
  int more = gzread(f, &extra, 1);
  if (more < 0) {
    snprintf(err, errsize, "%s: %s (a damaged .gz; %s)", path, gz_why(f), PACKAGE_HINT);
    goto done;
  }
  if (more != 0) {
    snprintf(err, errsize, "%s: trailing bytes after the %llu bytes the header promises (%s)", path,
             (unsigned long long)total, PACKAGE_HINT);
    goto done;
  }
  /* At the end of the input zlib hands out what it decoded and reports Z_BUF_ERROR rather than failing:
   * a .gz cut before its trailer would pass unchecked (its CRC never read) without this. */
  int code = Z_OK;
  gzerror(f, &code);
  if (code != Z_OK) {
    snprintf(err, errsize, "%s: the compressed data ends before its gzip trailer (truncated; %s)", path, PACKAGE_HINT);
    goto done;
  }
  rc = 0;
done:
  if (rc != 0 && data != NULL) {
    free(*data);
    *data = NULL;
  }
  gzclose(f);
  return rc;
}

int mnist_load(const char *dir, const char *prefix, mnist_set *set, char *err, size_t errsize) {
  memset(set, 0, sizeof *set);
  char path[4096];
  uint32_t idims[3], ldims[1];
  uint8_t *images = NULL, *labels = NULL;
  snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
  static const uint32_t image_dims[3] = {0, 28, 28}, label_dims[1] = {0};
  if (read_idx(path, 0x00000803u, 3, image_dims, idims, &images, err, errsize) != 0) return -1;
  snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
  if (read_idx(path, 0x00000801u, 1, label_dims, ldims, &labels, err, errsize) != 0) {
    free(images);
    return -1;
  }
  if (idims[0] != ldims[0] || idims[1] != 28 || idims[2] != 28) {
    snprintf(err, errsize, "%s/%s-*: %u images of %ux%u and %u labels; expected as many labels as 28x28 images", dir,
             prefix, idims[0], idims[1], idims[2], ldims[0]);
    free(images), free(labels);
    return -1;
  }
  for (uint32_t i = 0; i < ldims[0]; i++)
    if (labels[i] > 9) {
      snprintf(err, errsize, "%s: label %u is %u, expected 0..9", path, i, labels[i]);
      free(images), free(labels);
      return -1;
    }
  set->n = idims[0];
  set->rows = (int)idims[1];
  set->cols = (int)idims[2];
  set->images = images;
  set->labels = labels;
  return 0;
}

void mnist_free(mnist_set *set) {
  free(set->images);
  free(set->labels);
  memset(set, 0, sizeof *set);
}

int mnist_count(const char *dir, const char *prefix, int64_t *n, char *err, size_t errsize) {
  char path[4096];
  uint32_t idims[3];
  static const uint32_t image_dims[3] = {0, 28, 28};
  snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
  if (read_idx(path, 0x00000803u, 3, image_dims, idims, NULL, err, errsize) != 0) return -1;
  *n = idims[0];
  return 0;
}
