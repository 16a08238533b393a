/* gguf-writer.h - builds GGUF files in memory for tests (header-only; clai.h for the metadata type numbers,
 * testutil.h for the half conversions). Written from the GGUF specification for libclai's tests; it is not
 * llama.cpp's writer.
 *
 *   clait_gguf *w = clait_gguf_new(3);             // version 2 or 3
 *   clait_gguf_set_alignment(w, 64);               // writes general.alignment (u32); default 32, no key
 *   clait_gguf_str(w, "general.architecture", "llama");
 *   clait_gguf_u32(w, "llama.block_count", 2);
 *   clait_gguf_arr_str(w, "tokenizer.ggml.tokens", n, tokens);
 *   clait_gguf_arr(w, "tokenizer.ggml.scores", CLAI_GGUF_FLOAT32, n, scores);   // host values
 *   clait_gguf_tensor_f32(w, "output_norm.weight", 1, (int64_t[]){64}, gamma);
 *   clait_gguf_tensor_quant(w, "blk.0.attn_q.weight", CLAIT_GGML_Q8_0, 2, (int64_t[]){64, 64}, wq);
 *   clait_gguf_write(w, path);                     // or clait_gguf_build(w, &len) for the bytes
 *   clait_gguf_free(w);
 *
 * Shapes are row-major as in clai (the file gets them reversed, ne[0] = the last dim). Tensors are laid out
 * in the order they are added, each at the next multiple of the alignment. Nested arrays and other unusual
 * values: clait_gguf_key(w, key, type) starts a kv, then the clait_gguf_put_* functions append its value's
 * raw encoding (clait_gguf_put_arr starts an array: element type and count, then put the elements).
 * The quantizers (Q8_0, Q4_0, Q4_1 in the block layouts that include/clai.h documents) and dequantizers
 * let a test keep the exact values a quantized tensor holds.
 * clait_gguf_build() also records where every integer field of the file is (clait_gguf.fields), for
 * fuzzers. Allocation failures abort: this is test code. */
#ifndef CLAI_GGUF_WRITER_H
#define CLAI_GGUF_WRITER_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clai.h"
#include "testutil.h"

/* ggml tensor type numbers. */
enum {
  CLAIT_GGML_F32 = 0, CLAIT_GGML_F16 = 1, CLAIT_GGML_Q4_0 = 2, CLAIT_GGML_Q4_1 = 3, CLAIT_GGML_Q5_0 = 6,
  CLAIT_GGML_Q5_1 = 7, CLAIT_GGML_Q8_0 = 8, CLAIT_GGML_Q8_1 = 9, CLAIT_GGML_Q2_K = 10, CLAIT_GGML_Q3_K = 11,
  CLAIT_GGML_Q4_K = 12, CLAIT_GGML_Q5_K = 13, CLAIT_GGML_Q6_K = 14, CLAIT_GGML_Q8_K = 15, CLAIT_GGML_I8 = 24,
  CLAIT_GGML_I16 = 25, CLAIT_GGML_I32 = 26, CLAIT_GGML_I64 = 27, CLAIT_GGML_F64 = 28, CLAIT_GGML_BF16 = 30,
};

/* Values per block and bytes per block of a ggml type; 0 for a number this writer does not know. */
static inline void clait_ggml_block(uint32_t type, int64_t *block, int64_t *bytes) {
  static const int16_t tab[31][2] = {
      [0] = {1, 4},      [1] = {1, 2},      [2] = {32, 18},    [3] = {32, 20},    [6] = {32, 22},
      [7] = {32, 24},    [8] = {32, 34},    [9] = {32, 36},    [10] = {256, 84},  [11] = {256, 110},
      [12] = {256, 144}, [13] = {256, 176}, [14] = {256, 210}, [15] = {256, 292}, [24] = {1, 1},
      [25] = {1, 2},     [26] = {1, 4},     [27] = {1, 8},     [28] = {1, 8},     [30] = {1, 2}};
  *block = type < 31 ? tab[type][0] : 0;
  *bytes = type < 31 ? tab[type][1] : 0;
}

/* Bytes of n values (n a multiple of the block) of a ggml type. */
static inline size_t clait_ggml_bytes(uint32_t type, int64_t n) {
  int64_t b, bb;
  clait_ggml_block(type, &b, &bb);
  return b > 0 ? (size_t)(n / b * bb) : 0;
}

/* Where a built file keeps one integer field: the offset, its width in bytes (4 or 8), and what it is. */
typedef struct clait_gguf_field {
  size_t at;
  int width;
  char what[48];
} clait_gguf_field;

typedef struct clait_gguf_entry {
  char *name;
  uint32_t type;
  int ndim;
  int64_t shape[4];
  unsigned char *data;
  size_t bytes;
} clait_gguf_entry;

typedef struct clait_gguf {
  uint32_t version;
  uint32_t alignment;         /* the layout's; general.alignment is written only by clait_gguf_set_alignment */
  unsigned char *kv;          /* the kv section as it grows */
  size_t kv_len, kv_cap;
  uint64_t nkv;
  clait_gguf_entry *t;
  size_t nt, tcap;
  clait_gguf_field *fields;   /* after clait_gguf_build: the file's integer fields */
  size_t nfields, fcap;
  clait_gguf_field *kvfields; /* the kv section's, relative to its start */
  size_t nkvfields, kvfcap;
  size_t data_at;             /* after clait_gguf_build: where the data section starts */
} clait_gguf;

static inline void *clait_gguf_xrealloc_(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (p == NULL) {
    fprintf(stderr, "gguf-writer: out of memory\n");
    abort();
  }
  return p;
}

static inline clait_gguf *clait_gguf_new(uint32_t version) {
  clait_gguf *w = clait_gguf_xrealloc_(NULL, sizeof *w);
  memset(w, 0, sizeof *w);
  w->version = version;
  w->alignment = 32;
  return w;
}

static inline void clait_gguf_free(clait_gguf *w) {
  if (w == NULL) return;
  for (size_t i = 0; i < w->nt; i++) {
    free(w->t[i].name);
    free(w->t[i].data);
  }
  free(w->t);
  free(w->kv);
  free(w->fields);
  free(w->kvfields);
  free(w);
}

static inline void clait_gguf_note_(clait_gguf_field **f, size_t *n, size_t *cap, size_t at, int width,
                                    const char *what) {
  if (*n == *cap) {
    *cap = *cap ? 2 * *cap : 64;
    *f = clait_gguf_xrealloc_(*f, *cap * sizeof **f);
  }
  (*f)[*n].at = at;
  (*f)[*n].width = width;
  snprintf((*f)[*n].what, sizeof (*f)[*n].what, "%s", what);
  (*n)++;
}

/* ---- raw encoding into the kv section ---- */
static inline void clait_gguf_put_bytes(clait_gguf *w, const void *p, size_t n) {
  if (w->kv_len + n > w->kv_cap) {
    while (w->kv_len + n > w->kv_cap) w->kv_cap = w->kv_cap ? 2 * w->kv_cap : 256;
    w->kv = clait_gguf_xrealloc_(w->kv, w->kv_cap);
  }
  if (n > 0) memcpy(w->kv + w->kv_len, p, n);
  w->kv_len += n;
}
static inline void clait_gguf_put_le_(clait_gguf *w, uint64_t v, int width, const char *what) {
  unsigned char b[8];
  for (int i = 0; i < width; i++) b[i] = (unsigned char)(v >> (8 * i));
  if (what != NULL) clait_gguf_note_(&w->kvfields, &w->nkvfields, &w->kvfcap, w->kv_len, width, what);
  clait_gguf_put_bytes(w, b, (size_t)width);
}
static inline void clait_gguf_put_u8(clait_gguf *w, uint8_t v) { clait_gguf_put_le_(w, v, 1, NULL); }
static inline void clait_gguf_put_u16(clait_gguf *w, uint16_t v) { clait_gguf_put_le_(w, v, 2, NULL); }
static inline void clait_gguf_put_u32(clait_gguf *w, uint32_t v) { clait_gguf_put_le_(w, v, 4, NULL); }
static inline void clait_gguf_put_u64(clait_gguf *w, uint64_t v) { clait_gguf_put_le_(w, v, 8, NULL); }
static inline void clait_gguf_put_f32(clait_gguf *w, float v) {
  uint32_t x;
  memcpy(&x, &v, 4);
  clait_gguf_put_u32(w, x);
}
static inline void clait_gguf_put_f64(clait_gguf *w, double v) {
  uint64_t x;
  memcpy(&x, &v, 8);
  clait_gguf_put_u64(w, x);
}
/* A string: u64 length (a recorded field), then the bytes. */
static inline void clait_gguf_put_strn(clait_gguf *w, const char *s, size_t n) {
  clait_gguf_put_le_(w, n, 8, "string length");
  clait_gguf_put_bytes(w, s, n);
}
static inline void clait_gguf_put_str(clait_gguf *w, const char *s) { clait_gguf_put_strn(w, s, strlen(s)); }
/* An array's header: element type and count (both recorded fields); the caller puts the n elements. */
static inline void clait_gguf_put_arr(clait_gguf *w, uint32_t elem_type, uint64_t n) {
  clait_gguf_put_le_(w, elem_type, 4, "array element type");
  clait_gguf_put_le_(w, n, 8, "array count");
}
/* Starts a kv: the key and the value type; the value follows with the put functions. */
static inline void clait_gguf_key(clait_gguf *w, const char *key, uint32_t type) {
  clait_gguf_put_str(w, key);
  clait_gguf_put_le_(w, type, 4, "value type");
  w->nkv++;
}

/* ---- kvs ---- */
static inline void clait_gguf_u8(clait_gguf *w, const char *k, uint8_t v) { clait_gguf_key(w, k, CLAI_GGUF_UINT8), clait_gguf_put_u8(w, v); }
static inline void clait_gguf_i8(clait_gguf *w, const char *k, int8_t v) { clait_gguf_key(w, k, CLAI_GGUF_INT8), clait_gguf_put_u8(w, (uint8_t)v); }
static inline void clait_gguf_u16(clait_gguf *w, const char *k, uint16_t v) { clait_gguf_key(w, k, CLAI_GGUF_UINT16), clait_gguf_put_u16(w, v); }
static inline void clait_gguf_i16(clait_gguf *w, const char *k, int16_t v) { clait_gguf_key(w, k, CLAI_GGUF_INT16), clait_gguf_put_u16(w, (uint16_t)v); }
static inline void clait_gguf_u32(clait_gguf *w, const char *k, uint32_t v) { clait_gguf_key(w, k, CLAI_GGUF_UINT32), clait_gguf_put_u32(w, v); }
static inline void clait_gguf_i32(clait_gguf *w, const char *k, int32_t v) { clait_gguf_key(w, k, CLAI_GGUF_INT32), clait_gguf_put_u32(w, (uint32_t)v); }
static inline void clait_gguf_u64(clait_gguf *w, const char *k, uint64_t v) { clait_gguf_key(w, k, CLAI_GGUF_UINT64), clait_gguf_put_u64(w, v); }
static inline void clait_gguf_i64(clait_gguf *w, const char *k, int64_t v) { clait_gguf_key(w, k, CLAI_GGUF_INT64), clait_gguf_put_u64(w, (uint64_t)v); }
static inline void clait_gguf_f32(clait_gguf *w, const char *k, float v) { clait_gguf_key(w, k, CLAI_GGUF_FLOAT32), clait_gguf_put_f32(w, v); }
static inline void clait_gguf_f64(clait_gguf *w, const char *k, double v) { clait_gguf_key(w, k, CLAI_GGUF_FLOAT64), clait_gguf_put_f64(w, v); }
static inline void clait_gguf_bool(clait_gguf *w, const char *k, int v) { clait_gguf_key(w, k, CLAI_GGUF_BOOL), clait_gguf_put_u8(w, v != 0); }
static inline void clait_gguf_str(clait_gguf *w, const char *k, const char *s) { clait_gguf_key(w, k, CLAI_GGUF_STRING), clait_gguf_put_str(w, s); }
static inline void clait_gguf_strn(clait_gguf *w, const char *k, const char *s, size_t n) { clait_gguf_key(w, k, CLAI_GGUF_STRING), clait_gguf_put_strn(w, s, n); }

/* An array of n numbers or bools, given as host values of the element type's C type (uint8_t, int8_t,
 * uint16_t, ..., float, double; bool as uint8_t 0/1). */
static inline void clait_gguf_arr(clait_gguf *w, const char *k, uint32_t elem_type, uint64_t n, const void *data) {
  static const int size[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  if (elem_type > 12 || size[elem_type] == 0) {
    fprintf(stderr, "gguf-writer: clait_gguf_arr: element type %u is not a number\n", elem_type);
    abort();
  }
  const int es = size[elem_type];
  clait_gguf_key(w, k, CLAI_GGUF_ARRAY);
  clait_gguf_put_arr(w, elem_type, n);
  for (uint64_t i = 0; i < n; i++) {
    uint64_t v = 0;
    memcpy(&v, (const unsigned char *)data + i * (uint64_t)es, (size_t)es); /* little-endian hosts */
    clait_gguf_put_le_(w, v, es, NULL);
  }
}

/* An array of n NUL-terminated strings. */
static inline void clait_gguf_arr_str(clait_gguf *w, const char *k, uint64_t n, const char *const *s) {
  clait_gguf_key(w, k, CLAI_GGUF_ARRAY);
  clait_gguf_put_arr(w, CLAI_GGUF_STRING, n);
  for (uint64_t i = 0; i < n; i++) clait_gguf_put_str(w, s[i]);
}

/* general.alignment (a u32 kv, written here) and the layout that follows from it. */
static inline void clait_gguf_set_alignment(clait_gguf *w, uint32_t a) {
  clait_gguf_u32(w, "general.alignment", a);
  w->alignment = a;
}

/* ---- tensors ---- */

/* A tensor of ggml type `type`, row-major shape (1 to 4 dims), and its raw data (bytes must be the type's
 * size of the shape: clait_ggml_bytes). The data is copied. */
static inline void clait_gguf_tensor(clait_gguf *w, const char *name, uint32_t type, int ndim, const int64_t *shape,
                                     const void *data, size_t bytes) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  if (ndim < 1 || ndim > 4 || clait_ggml_bytes(type, n) != bytes) {
    fprintf(stderr, "gguf-writer: tensor %s: %zu bytes for %lld values of type %u (expected %zu), %d dims\n", name,
            bytes, (long long)n, type, clait_ggml_bytes(type, n), ndim);
    abort();
  }
  if (w->nt == w->tcap) {
    w->tcap = w->tcap ? 2 * w->tcap : 16;
    w->t = clait_gguf_xrealloc_(w->t, w->tcap * sizeof *w->t);
  }
  clait_gguf_entry *t = &w->t[w->nt++];
  memset(t, 0, sizeof *t);
  t->name = clait_gguf_xrealloc_(NULL, strlen(name) + 1);
  strcpy(t->name, name);
  t->type = type;
  t->ndim = ndim;
  for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
  t->data = clait_gguf_xrealloc_(NULL, bytes);
  if (bytes > 0) memcpy(t->data, data, bytes);
  t->bytes = bytes;
}

/* Little-endian halves, through testutil.h's conversions (round to nearest even, as vstore_half). */
static inline void clait_gguf_put_half_(unsigned char *p, float v) {
  uint16_t h = clait_f32_to_f16(v);
  p[0] = (unsigned char)h, p[1] = (unsigned char)(h >> 8);
}
static inline float clait_gguf_get_half_(const unsigned char *p) { return clait_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* Quantizes n values (a multiple of 32) into blocks of Q8_0, Q4_0 or Q4_1 (include/clai.h's layouts), or
 * converts them to F32 or F16. out holds clait_ggml_bytes(type, n) bytes. The scales are rounded to half
 * first, and the quants chosen for the rounded scale, so dequantizing gives the nearest representable values. */
static inline void clait_gguf_quantize(uint32_t type, const float *x, int64_t n, void *out) {
  unsigned char *o = out;
  if (type == CLAIT_GGML_F32) {
    memcpy(o, x, (size_t)n * 4);
    return;
  }
  if (type == CLAIT_GGML_F16) {
    for (int64_t i = 0; i < n; i++) clait_gguf_put_half_(o + 2 * i, x[i]);
    return;
  }
  for (int64_t b = 0; b < n / 32; b++) {
    const float *v = x + 32 * b;
    float lo = v[0], hi = v[0], big = 0; /* big: the value of largest magnitude, with its sign */
    for (int j = 0; j < 32; j++) {
      if (v[j] < lo) lo = v[j];
      if (v[j] > hi) hi = v[j];
      if (fabsf(v[j]) > fabsf(big)) big = v[j];
    }
    if (type == CLAIT_GGML_Q8_0) {
      unsigned char *blk = o + 34 * b;
      clait_gguf_put_half_(blk, fabsf(big) / 127.0f);
      float d = clait_gguf_get_half_(blk);
      for (int j = 0; j < 32; j++) {
        long q = d > 0 ? lroundf(v[j] / d) : 0;
        q = q < -127 ? -127 : q > 127 ? 127 : q;
        blk[2 + j] = (unsigned char)(int8_t)q;
      }
    } else if (type == CLAIT_GGML_Q4_0 || type == CLAIT_GGML_Q4_1) {
      const int q41 = type == CLAIT_GGML_Q4_1;
      unsigned char *blk = o + (q41 ? 20 : 18) * b, *qs = blk + (q41 ? 4 : 2);
      /* Q4_0: value = d * (q - 8); the largest magnitude lands on q = 0 (-8 d). Q4_1: value = d * q + m. */
      clait_gguf_put_half_(blk, q41 ? (hi - lo) / 15.0f : big / -8.0f);
      if (q41) clait_gguf_put_half_(blk + 2, lo);
      const float d = clait_gguf_get_half_(blk), m = q41 ? clait_gguf_get_half_(blk + 2) : 0.0f;
      memset(qs, 0, 16);
      for (int j = 0; j < 32; j++) {
        long q = d != 0 ? lroundf(q41 ? (v[j] - m) / d : v[j] / d + 8.0f) : (q41 ? 0 : 8);
        q = q < 0 ? 0 : q > 15 ? 15 : q;
        qs[j & 15] |= (unsigned char)(q << (j < 16 ? 0 : 4));
      }
    } else {
      fprintf(stderr, "gguf-writer: cannot quantize to type %u\n", type);
      abort();
    }
  }
}

/* The values n quantized (or F32/F16) values stand for, from raw blocks. */
static inline void clait_gguf_dequantize(uint32_t type, const void *in, int64_t n, float *x) {
  const unsigned char *p = in;
  for (int64_t i = 0; i < n; i++) {
    const int64_t b = i / 32;
    const int j = (int)(i % 32);
    switch (type) {
    case CLAIT_GGML_F32: memcpy(&x[i], p + 4 * i, 4); break;
    case CLAIT_GGML_F16: x[i] = clait_gguf_get_half_(p + 2 * i); break;
    case CLAIT_GGML_Q8_0: x[i] = clait_gguf_get_half_(p + 34 * b) * (float)(int8_t)p[34 * b + 2 + j]; break;
    case CLAIT_GGML_Q4_0: {
      const unsigned char *blk = p + 18 * b;
      int q = j < 16 ? blk[2 + j] & 15 : blk[2 + j - 16] >> 4;
      x[i] = clait_gguf_get_half_(blk) * (float)(q - 8);
      break;
    }
    case CLAIT_GGML_Q4_1: {
      const unsigned char *blk = p + 20 * b;
      int q = j < 16 ? blk[4 + j] & 15 : blk[4 + j - 16] >> 4;
      x[i] = clait_gguf_get_half_(blk) * (float)q + clait_gguf_get_half_(blk + 2);
      break;
    }
    default:
      fprintf(stderr, "gguf-writer: cannot dequantize type %u\n", type);
      abort();
    }
  }
}

/* A tensor of floats stored as `type` (F32, F16, Q8_0, Q4_0, Q4_1; the last dim a multiple of 32 for the
 * quantized ones). */
static inline void clait_gguf_tensor_quant(clait_gguf *w, const char *name, uint32_t type, int ndim,
                                           const int64_t *shape, const float *v) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  size_t bytes = clait_ggml_bytes(type, n);
  void *buf = clait_gguf_xrealloc_(NULL, bytes);
  clait_gguf_quantize(type, v, n, buf);
  clait_gguf_tensor(w, name, type, ndim, shape, buf, bytes);
  free(buf);
}

static inline void clait_gguf_tensor_f32(clait_gguf *w, const char *name, int ndim, const int64_t *shape,
                                         const float *v) {
  clait_gguf_tensor_quant(w, name, CLAIT_GGML_F32, ndim, shape, v);
}

/* ---- the file ---- */

static inline void clait_gguf_le_(unsigned char *p, uint64_t v, int width) {
  for (int i = 0; i < width; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* The whole file, malloc'd (*len bytes); fills w->fields and w->data_at. */
static inline unsigned char *clait_gguf_build(clait_gguf *w, size_t *len) {
  const size_t a = w->alignment ? w->alignment : 32;
  size_t info = 0;
  for (size_t i = 0; i < w->nt; i++) info += 8 + strlen(w->t[i].name) + 4 + 8 * (size_t)w->t[i].ndim + 4 + 8;
  const size_t head = 24 + w->kv_len + info;
  w->data_at = (head + a - 1) / a * a;
  size_t end = w->data_at;
  for (size_t i = 0; i < w->nt; i++) end = (end + a - 1) / a * a + w->t[i].bytes;
  unsigned char *f = clait_gguf_xrealloc_(NULL, end);
  memset(f, 0, end);
  w->nfields = 0;
  memcpy(f, "GGUF", 4);
  clait_gguf_le_(f + 4, w->version, 4);
  clait_gguf_note_(&w->fields, &w->nfields, &w->fcap, 4, 4, "version");
  clait_gguf_le_(f + 8, w->nt, 8);
  clait_gguf_note_(&w->fields, &w->nfields, &w->fcap, 8, 8, "tensor count");
  clait_gguf_le_(f + 16, w->nkv, 8);
  clait_gguf_note_(&w->fields, &w->nfields, &w->fcap, 16, 8, "kv count");
  if (w->kv_len > 0) memcpy(f + 24, w->kv, w->kv_len);
  for (size_t i = 0; i < w->nkvfields; i++)
    clait_gguf_note_(&w->fields, &w->nfields, &w->fcap, 24 + w->kvfields[i].at, w->kvfields[i].width,
                     w->kvfields[i].what);
  size_t at = 24 + w->kv_len, off = 0;
  for (size_t i = 0; i < w->nt; i++) {
    const clait_gguf_entry *t = &w->t[i];
    const size_t nl = strlen(t->name);
    clait_gguf_note_(&w->fields, &w->nfields, &w->fcap, at, 8, "tensor name length");
    clait_gguf_le_(f + at, nl, 8);
    memcpy(f + at + 8, t->name, nl);
    at += 8 + nl;
    clait_gguf_note_(&w->fields, &w->nfields, &w->fcap, at, 4, "n_dims");
    clait_gguf_le_(f + at, (uint64_t)t->ndim, 4);
    at += 4;
    for (int d = 0; d < t->ndim; d++, at += 8) {
      clait_gguf_note_(&w->fields, &w->nfields, &w->fcap, at, 8, "ne");
      clait_gguf_le_(f + at, (uint64_t)t->shape[t->ndim - 1 - d], 8);
    }
    clait_gguf_note_(&w->fields, &w->nfields, &w->fcap, at, 4, "ggml type");
    clait_gguf_le_(f + at, t->type, 4);
    at += 4;
    off = (off + a - 1) / a * a;
    clait_gguf_note_(&w->fields, &w->nfields, &w->fcap, at, 8, "tensor offset");
    clait_gguf_le_(f + at, off, 8);
    at += 8;
    if (t->bytes > 0) memcpy(f + w->data_at + off, t->data, t->bytes);
    off += t->bytes;
  }
  *len = end;
  return f;
}

/* Writes the file to path; 0 on success, -1 (with errno) on failure. */
static inline int clait_gguf_write(clait_gguf *w, const char *path) {
  size_t n;
  unsigned char *f = clait_gguf_build(w, &n);
  FILE *fp = fopen(path, "wb");
  int ok = fp != NULL && fwrite(f, 1, n, fp) == n;
  if (fp != NULL && fclose(fp) != 0) ok = 0;
  free(f);
  return ok ? 0 : -1;
}

#endif /* CLAI_GGUF_WRITER_H */
