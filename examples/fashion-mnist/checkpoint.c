/* checkpoint.c - file layout (little-endian):
 *   "CLAICKP1"                      magic and version
 *   meta: model[16], seed u64, epoch i64, step i64, batch i64
 *   u32 count, then per tensor: u32 name length, name, u32 ndim, i64 shape[ndim], f32 data[numel]
 *   u64 checksum (FNV-1a over every byte before it) */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAGIC "CLAICKP1"

typedef struct wbuf {
  unsigned char *p;
  size_t len, cap;
  int oom;
} wbuf;

static void put(wbuf *b, const void *data, size_t n) {
  if (b->oom) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (p == NULL) {
      b->oom = 1;
      return;
    }
    b->p = p, b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

static uint64_t fnv1a(const unsigned char *p, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

int ckpt_save(clai_context *ctx, const char *path, const ckpt_meta *meta, const ckpt_entry *e, int n, char *err,
              size_t errsize) {
  wbuf b = {0};
  put(&b, MAGIC, 8);
  put(&b, meta->model, sizeof meta->model);
  put(&b, &meta->seed, 8), put(&b, &meta->epoch, 8), put(&b, &meta->step, 8), put(&b, &meta->batch, 8);
  uint32_t count = (uint32_t)n;
  put(&b, &count, 4);
  for (int i = 0; i < n; i++) {
    uint32_t nl = (uint32_t)strlen(e[i].name), nd = (uint32_t)clai_tensor_ndim(e[i].t);
    put(&b, &nl, 4), put(&b, e[i].name, nl), put(&b, &nd, 4);
    for (uint32_t d = 0; d < nd; d++) {
      int64_t s = clai_tensor_dim(e[i].t, (int)d);
      put(&b, &s, 8);
    }
    size_t bytes = (size_t)clai_tensor_numel(e[i].t) * 4;
    if (b.oom) break;
    unsigned char *tmp = malloc(bytes ? bytes : 1);
    if (tmp == NULL) {
      b.oom = 1;
      break;
    }
    clai_status st = clai_tensor_read(e[i].t, tmp, bytes);
    if (st != CLAI_OK) {
      snprintf(err, errsize, "reading %s: %s", e[i].name, clai_errmsg(ctx));
      free(tmp), free(b.p);
      return -1;
    }
    put(&b, tmp, bytes);
    free(tmp);
  }
  uint64_t sum = fnv1a(b.p, b.len);
  put(&b, &sum, 8);
  if (b.oom) {
    snprintf(err, errsize, "out of memory building the checkpoint");
    free(b.p);
    return -1;
  }
  size_t pl = strlen(path);
  char *tmpl = malloc(pl + 16);
  if (tmpl == NULL) {
    free(b.p);
    snprintf(err, errsize, "out of memory");
    return -1;
  }
  snprintf(tmpl, pl + 16, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(tmpl);
  int rc = -1;
  if (fd < 0) {
    snprintf(err, errsize, "%s: %s", tmpl, strerror(errno));
    goto done;
  }
  fchmod(fd, 0644); /* mkstemp creates 0600; a checkpoint is an ordinary data file */
  size_t off = 0;
  while (off < b.len) {
    ssize_t w = write(fd, b.p + off, b.len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      snprintf(err, errsize, "writing %s: %s", tmpl, strerror(errno));
      break;
    }
    off += (size_t)w;
  }
  if (off == b.len && fsync(fd) != 0) snprintf(err, errsize, "fsync %s: %s", tmpl, strerror(errno));
  else if (off == b.len) rc = 0;
  close(fd);
  if (rc == 0 && rename(tmpl, path) != 0) {
    snprintf(err, errsize, "rename %s -> %s: %s", tmpl, path, strerror(errno));
    rc = -1;
  }
  if (rc != 0) unlink(tmpl);
  if (rc == 0) {
    /* The rename itself is durable only once the directory is flushed. */
    char *d = strdup(path);
    int dfd = d != NULL ? open(dirname(d), O_RDONLY | O_DIRECTORY) : -1;
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
    free(d);
  }
done:
  free(tmpl);
  free(b.p);
  return rc;
}

/* A bounds-checked reader over the file's bytes. */
typedef struct rbuf {
  const unsigned char *p;
  size_t len, pos;
} rbuf;

static int take(rbuf *r, void *out, size_t n) {
  if (r->len - r->pos < n) return -1;
  if (out != NULL) memcpy(out, r->p + r->pos, n);
  r->pos += n;
  return 0;
}

/* Copies the n bytes of a name from a file into out (capacity cap > n), with '?' for every byte that is not
 * printable ASCII, so that a damaged name can be shown in a message. */
static void printable(char *out, size_t cap, const unsigned char *p, size_t n) {
  size_t i = 0;
  for (; i < n && i + 1 < cap; i++) out[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
  out[i] = '\0';
}

int ckpt_load(clai_context *ctx, const char *path, const ckpt_expect *want, ckpt_meta *meta, const ckpt_entry *e,
              int n, char *err, size_t errsize) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    if (errno == ENOENT) return 1;
    snprintf(err, errsize, "%s: %s", path, strerror(errno));
    return -1;
  }
  unsigned char *data = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 1 << 20;
      unsigned char *p = realloc(data, cap);
      if (p == NULL) {
        free(data), fclose(f);
        snprintf(err, errsize, "%s: out of memory", path);
        return -1;
      }
      data = p;
    }
    size_t got = fread(data + len, 1, cap - len, f);
    len += got;
    if (got == 0) break;
  }
  fclose(f);
  int rc = -1;
  uint64_t sum;
  char name[64], shown[64];
  if (len < 8 + 16 + 32 + 4 + 8 || memcmp(data, MAGIC, 8) != 0) {
    snprintf(err, errsize, "%s: not a libclai checkpoint (or an older format)", path);
    goto done;
  }
  memcpy(&sum, data + len - 8, 8);
  if (fnv1a(data, len - 8) != sum) {
    snprintf(err, errsize, "%s: checksum mismatch (a damaged or truncated checkpoint)", path);
    goto done;
  }
  /* The checksum only proves that the bytes are those written by someone: each field is still checked for
   * what this trainer can have written, before it is used. */
  rbuf r = {data, len - 8, 8};
  ckpt_meta m;
  memset(&m, 0, sizeof m);
  uint32_t count = 0;
  take(&r, m.model, sizeof m.model);
  take(&r, &m.seed, 8), take(&r, &m.epoch, 8), take(&r, &m.step, 8), take(&r, &m.batch, 8);
  take(&r, &count, 4); /* the length check above leaves room for all of these */
  const char *nul = memchr(m.model, '\0', sizeof m.model);
  int padded = nul != NULL;
  for (const char *p = nul; padded && p < m.model + sizeof m.model; p++) padded = *p == '\0';
  if (!padded || nul == m.model) {
    printable(shown, sizeof shown, (const unsigned char *)m.model, nul != NULL ? (size_t)(nul - m.model) : sizeof m.model);
    snprintf(err, errsize, "%s: the model field ('%s') is not a model name padded with zero bytes", path, shown);
    goto done;
  }
  if (strcmp(m.model, want->model) != 0) {
    printable(shown, sizeof shown, (const unsigned char *)m.model, strlen(m.model));
    snprintf(err, errsize, "%s: the model field is '%s' but this run trains --model %s; run with --model %s to resume",
             path, shown, want->model, shown);
    goto done;
  }
  if (m.seed != want->seed) {
    snprintf(err, errsize, "%s: the seed field is %llu but this run has --seed %llu; run with --seed %llu to resume",
             path, (unsigned long long)m.seed, (unsigned long long)want->seed, (unsigned long long)m.seed);
    goto done;
  }
  if (m.batch != want->batch) {
    snprintf(err, errsize, "%s: the batch field is %lld but this run has --batch %lld; run with --batch %lld to resume",
             path, (long long)m.batch, (long long)want->batch, (long long)m.batch);
    goto done;
  }
  if (m.epoch < 0 || m.epoch > want->max_epoch) {
    snprintf(err, errsize, "%s: the epoch field is %lld, not a count of completed epochs (0 to %lld)", path,
             (long long)m.epoch, (long long)want->max_epoch);
    goto done;
  }
  /* epoch <= max_epoch (100000) and steps_per_epoch <= the training set: the product cannot overflow. */
  if (m.step != m.epoch * want->steps_per_epoch) {
    snprintf(err, errsize,
             "%s: the step field is %lld, but %lld epochs of %lld steps (batch %lld) make %lld; was the checkpoint "
             "written with another --train-limit or data set?",
             path, (long long)m.step, (long long)m.epoch, (long long)want->steps_per_epoch, (long long)want->batch,
             (long long)(m.epoch * want->steps_per_epoch));
    goto done;
  }
  if (count != (uint32_t)n) {
    snprintf(err, errsize, "%s: the tensor count field is %u, this model has %d tensors", path, count, n);
    goto done;
  }
  /* First pass: every name, shape, length and value must be right before anything is written. */
  size_t start = r.pos;
  for (int pass = 0; pass < 2; pass++) {
    r.pos = start;
    for (int i = 0; i < n; i++) {
      uint32_t nl = 0, nd = 0;
      if (take(&r, &nl, 4) != 0) goto truncated;
      if (nl == 0 || nl >= sizeof name) {
        snprintf(err, errsize, "%s: tensor %d: the name length field is %u (expected 1 to %zu)", path, i, nl,
                 sizeof name - 1);
        goto done;
      }
      if (take(&r, name, nl) != 0) goto truncated;
      if (nl != strlen(e[i].name) || memcmp(name, e[i].name, nl) != 0) {
        printable(shown, sizeof shown, (const unsigned char *)name, nl);
        snprintf(err, errsize, "%s: tensor %d is named '%s', expected '%s'", path, i, shown, e[i].name);
        goto done;
      }
      const int want_nd = clai_tensor_ndim(e[i].t);
      if (take(&r, &nd, 4) != 0) goto truncated;
      if (nd != (uint32_t)want_nd) {
        snprintf(err, errsize, "%s: tensor '%s': the ndim field is %u, this model's tensor has %d dimensions", path,
                 e[i].name, nd, want_nd);
        goto done;
      }
      for (uint32_t d = 0; d < nd; d++) {
        int64_t s;
        if (take(&r, &s, 8) != 0) goto truncated;
        if (s != clai_tensor_dim(e[i].t, (int)d)) {
          snprintf(err, errsize, "%s: tensor '%s': dimension %u of its shape is %lld, this model's is %lld", path,
                   e[i].name, d, (long long)s, (long long)clai_tensor_dim(e[i].t, (int)d));
          goto done;
        }
      }
      size_t count_f = (size_t)clai_tensor_numel(e[i].t), bytes = count_f * 4;
      if (r.len - r.pos < bytes) {
        snprintf(err, errsize, "%s: tensor '%s': the file holds %zu of its %zu data bytes (a shortened checkpoint)",
                 path, e[i].name, r.len - r.pos, bytes);
        goto done;
      }
      if (pass == 0)
        for (size_t k = 0; k < count_f; k++) {
          float v;
          memcpy(&v, r.p + r.pos + 4 * k, 4);
          if (!isfinite(v)) {
            snprintf(err, errsize, "%s: tensor '%s': element %zu is %g; a checkpoint to resume from holds finite "
                     "values only (did the training diverge?)", path, e[i].name, k, (double)v);
            goto done;
          }
        }
      if (pass == 1 && clai_tensor_write(e[i].t, r.p + r.pos, bytes) != CLAI_OK) {
        snprintf(err, errsize, "%s: writing %s: %s", path, e[i].name, clai_errmsg(ctx));
        goto done;
      }
      r.pos += bytes;
    }
    if (r.pos != r.len) {
      snprintf(err, errsize, "%s: %zu bytes after the last tensor (lengths do not add up)", path, r.len - r.pos);
      goto done;
    }
  }
  *meta = m;
  rc = 0;
  goto done;
truncated:
  snprintf(err, errsize, "%s: malformed (the file ends inside a tensor's header)", path);
done:
  free(data);
  return rc;
}
