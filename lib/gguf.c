/* gguf.c - GGUF model files (versions 2 and 3): the metadata and the tensor directory, read from a read-only
 * mapping of the file, and tensors written from the mapping straight into device tensors.
 *
 * The layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 kv count; the kvs (key string, u32
 * value type, value); the tensor infos (name string, u32 n_dims, n_dims u64 ne with ne[0] the fastest, u32
 * ggml type, u64 offset into the data section); the data section from the end of the infos rounded up to the
 * alignment. A string is a u64 length and that many bytes; an array a u32 element type, a u64 count and the
 * elements (arrays may nest).
 *
 * Every read goes through a cursor that knows how many bytes remain, and every count is compared with what
 * the remaining bytes can hold before anything is allocated for it or looped over: a count of 2^64 - 1 in a
 * file of 100 bytes fails at once, and no allocation exceeds a small multiple of the file's size. Open builds
 * the indexes the accessors need (the offsets of each value, a table of each string array's elements, hash
 * tables of the keys and the tensor names), so nothing is parsed again after it and the object is read-only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define GGUF_MAX_DEPTH 8      /* arrays nested deeper are refused (each level is a recursion) */
#define GGUF_MAX_NDIM 4       /* ggml's GGML_MAX_DIMS */
#define GGUF_MAX_KEY 65535    /* the specification's limit on a key's length */
#define GGUF_DEFAULT_ALIGN 32

/* ggml's tensor types: name, values per block, bytes per block, the clai_dtype it loads as (-1: none). A
 * NULL name is a number GGUF does not define (or no longer does: 4 and 5 were Q4_2 and Q4_3), or one this
 * reader does not know the block size of (the IQ types), which it refuses rather than guess at. */
static const struct ggml_type {
  const char *name;
  uint32_t block;
  uint32_t block_bytes;
  int dtype;
} GGML_TYPES[] = {
    [0] = {"F32", 1, 4, CLAI_DTYPE_F32},        [1] = {"F16", 1, 2, CLAI_DTYPE_F16},
    [2] = {"Q4_0", 32, 18, CLAI_DTYPE_Q4_0},    [3] = {"Q4_1", 32, 20, CLAI_DTYPE_Q4_1},
    [6] = {"Q5_0", 32, 22, -1},                 [7] = {"Q5_1", 32, 24, -1},
    [8] = {"Q8_0", 32, 34, CLAI_DTYPE_Q8_0},    [9] = {"Q8_1", 32, 36, -1},
    [10] = {"Q2_K", 256, 84, -1},               [11] = {"Q3_K", 256, 110, -1},
    [12] = {"Q4_K", 256, 144, CLAI_DTYPE_Q4_K}, [13] = {"Q5_K", 256, 176, -1},
    [14] = {"Q6_K", 256, 210, CLAI_DTYPE_Q6_K}, [15] = {"Q8_K", 256, 292, -1},
    [24] = {"I8", 1, 1, -1},                    [25] = {"I16", 1, 2, -1},
    [26] = {"I32", 1, 4, CLAI_DTYPE_I32},       [27] = {"I64", 1, 8, -1},
    [28] = {"F64", 1, 8, -1},                   [30] = {"BF16", 1, 2, -1},
};
#define GGML_NTYPES (sizeof GGML_TYPES / sizeof GGML_TYPES[0])

static const struct ggml_type *ggml_type_get(uint32_t t) {
  return t < GGML_NTYPES && GGML_TYPES[t].name != NULL ? &GGML_TYPES[t] : NULL;
}

const char *clai_gguf_ggml_type_name(uint32_t ggml_type) {
  const struct ggml_type *t = ggml_type_get(ggml_type);
  return t != NULL ? t->name : "?";
}

/* Size of a scalar metadata value, 0 for string, array and unknown types. */
static uint64_t scalar_size(uint32_t type) {
  switch (type) {
  case CLAI_GGUF_UINT8:
  case CLAI_GGUF_INT8:
  case CLAI_GGUF_BOOL: return 1;
  case CLAI_GGUF_UINT16:
  case CLAI_GGUF_INT16: return 2;
  case CLAI_GGUF_UINT32:
  case CLAI_GGUF_INT32:
  case CLAI_GGUF_FLOAT32: return 4;
  case CLAI_GGUF_UINT64:
  case CLAI_GGUF_INT64:
  case CLAI_GGUF_FLOAT64: return 8;
  }
  return 0;
}

static const char *type_name(uint32_t type) {
  static const char *const names[] = {"uint8", "int8",  "uint16", "int16",  "uint32", "int32", "float32",
                                      "bool",  "string", "array", "uint64", "int64",  "float64"};
  return type < sizeof names / sizeof names[0] ? names[type] : "?";
}

typedef struct gguf_kv {
  uint64_t key_at, key_len; /* the key's bytes */
  uint32_t type;
  uint64_t val_at;          /* scalar: its bytes; string: its bytes (after the length); array: its first element */
  uint64_t len;             /* string: bytes; array: elements */
  uint32_t elem_type;       /* arrays */
  uint64_t *str_at;         /* arrays of strings: where each element's u64 length is */
} gguf_kv;

typedef struct gguf_tensor {
  uint64_t name_at, name_len;
  uint32_t type;
  int ndim;
  int64_t ne[GGUF_MAX_NDIM];
  uint64_t offset; /* absolute */
  uint64_t bytes;
} gguf_tensor;

/* Open addressing over positions + 1 (0 = empty); capacity a power of two at least twice the entries. */
typedef struct gguf_index {
  uint64_t *slot;
  uint64_t mask;
} gguf_index;

struct clai_gguf {
  const unsigned char *map;
  uint64_t size;
  uint32_t version;
  uint64_t alignment;
  uint64_t data_at;
  int64_t nkv, ntensors;
  gguf_kv *kv;
  gguf_tensor *tensors;
  gguf_index kv_index, tensor_index;
};

/* ---- reading with bounds -------------------------------------------------------------------------------- */

typedef struct reader {
  const unsigned char *p;
  uint64_t size, at;
  const char *path;
  char where[200]; /* the item being read, for messages: "header", "kv 3 'general.name'", ... */
  char *err;
  size_t errcap;
  int oom; /* the failure was an allocation's, not the file's */
} reader;

static uint64_t le(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* A name or key from the file for a message: at most 64 bytes, anything but printable ASCII as \xNN. */
static const char *show(const unsigned char *s, uint64_t len, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = '\0';
  for (uint64_t i = 0; i < len && i < 64; i++) {
    unsigned char c = s[i];
    if (c >= 0x20 && c < 0x7f && c != '\\') clai__appendf(buf, cap, &n, "%c", c);
    else clai__appendf(buf, cap, &n, "\\x%02x", c);
  }
  if (len > 64) clai__appendf(buf, cap, &n, "...");
  return buf;
}

static int bad(reader *r, const char *fmt, ...) CLAI__PRINTF(2, 3);
static int bad(reader *r, const char *fmt, ...) {
  if (r->err == NULL || r->errcap == 0) return 0;
  size_t n = 0;
  r->err[0] = '\0';
  clai__appendf(r->err, r->errcap, &n, "%s: %s%s", r->path, r->where, r->where[0] ? ": " : "");
  if (n < r->errcap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err + n, r->errcap - n, fmt, ap);
    va_end(ap);
  }
  return 0;
}

static uint64_t remain(const reader *r) { return r->size - r->at; }

/* 1 when n more bytes are there for `what`, else 0 with a message. */
static int need(reader *r, uint64_t n, const char *what) {
  if (n <= remain(r)) return 1;
  return bad(r, "%s at offset %llu needs %llu bytes, but the file ends at %llu", what, (unsigned long long)r->at,
             (unsigned long long)n, (unsigned long long)r->size);
}

static int rd_u32(reader *r, const char *what, uint32_t *v) {
  if (!need(r, 4, what)) return 0;
  *v = (uint32_t)le(r->p + r->at, 4);
  r->at += 4;
  return 1;
}

static int rd_u64(reader *r, const char *what, uint64_t *v) {
  if (!need(r, 8, what)) return 0;
  *v = le(r->p + r->at, 8);
  r->at += 8;
  return 1;
}

/* A string: its length field, then that many bytes; *at is where the bytes start. */
static int rd_str(reader *r, const char *what, uint64_t *at, uint64_t *len) {
  uint64_t n, len_at = r->at;
  char w[96];
  snprintf(w, sizeof w, "the length of %s", what);
  if (!rd_u64(r, w, &n)) return 0;
  if (n > remain(r))
    return bad(r, "%s at offset %llu has length %llu, but only %llu bytes remain in the file", what,
               (unsigned long long)len_at, (unsigned long long)n, (unsigned long long)remain(r));
  *at = r->at;
  *len = n;
  r->at += n;
  return 1;
}

/* A count of elements of at least `each` bytes, read at the cursor and checked against the bytes left. */
static int rd_count(reader *r, const char *what, uint64_t each, uint64_t *count) {
  uint64_t n, n_at = r->at;
  if (!rd_u64(r, what, &n)) return 0;
  if (n > remain(r) / each)
    return bad(r, "%s at offset %llu is %llu, but the %llu bytes left in the file hold at most %llu", what,
               (unsigned long long)n_at, (unsigned long long)n, (unsigned long long)remain(r),
               (unsigned long long)(remain(r) / each));
  *count = n;
  return 1;
}

static int check_bools(reader *r, uint64_t n) {
  for (uint64_t i = 0; i < n; i++)
    if (r->p[r->at + i] > 1)
      return bad(r, "the bool at offset %llu is %u, neither 0 nor 1", (unsigned long long)(r->at + i),
                 r->p[r->at + i]);
  return 1;
}

/* Reads (and checks) one value of `type` at the cursor. kv is the top-level entry, which records where the
 * value is; NULL for the elements of a nested array, which are checked and passed over. */
static int rd_value(reader *r, uint32_t type, int depth, gguf_kv *kv) {
  uint64_t es = scalar_size(type);
  if (es > 0) {
    if (!need(r, es, "the value")) return 0;
    if (type == CLAI_GGUF_BOOL && !check_bools(r, 1)) return 0;
    if (kv != NULL) kv->val_at = r->at;
    r->at += es;
    return 1;
  }
  if (type == CLAI_GGUF_STRING) {
    uint64_t at, len;
    if (!rd_str(r, "the string", &at, &len)) return 0;
    if (kv != NULL) kv->val_at = at, kv->len = len;
    return 1;
  }
  if (type != CLAI_GGUF_ARRAY) return bad(r, "value type %u is not a GGUF type (0 to 12)", type);
  if (depth >= GGUF_MAX_DEPTH)
    return bad(r, "the array at offset %llu is nested more than %d deep", (unsigned long long)r->at, GGUF_MAX_DEPTH);
  uint32_t et;
  uint64_t et_at = r->at, n;
  if (!rd_u32(r, "the array's element type", &et)) return 0;
  if (et > CLAI_GGUF_FLOAT64)
    return bad(r, "the array's element type at offset %llu is %u, not a GGUF type (0 to 12)",
               (unsigned long long)et_at, et);
  es = scalar_size(et);
  /* The least an element takes: its bytes, a string's length field, a nested array's type and count. */
  uint64_t least = es > 0 ? es : et == CLAI_GGUF_STRING ? 8 : 12;
  char what[64];
  snprintf(what, sizeof what, "the count of the array of %s", type_name(et));
  if (!rd_count(r, what, least, &n)) return 0;
  if (kv != NULL) kv->elem_type = et, kv->len = n, kv->val_at = r->at;
  if (es > 0) {
    if (et == CLAI_GGUF_BOOL && !check_bools(r, n)) return 0;
    r->at += n * es; /* cannot pass the end: checked by rd_count */
    return 1;
  }
  if (et == CLAI_GGUF_STRING && kv != NULL && n > 0) {
    /* n * 8 <= the bytes left, so this table is never larger than the file */
    kv->str_at = malloc((size_t)n * sizeof *kv->str_at);
    if (kv->str_at == NULL) {
      r->oom = 1;
      return bad(r, "out of memory for the offsets of %llu strings", (unsigned long long)n);
    }
  }
  for (uint64_t i = 0; i < n; i++) {
    if (et == CLAI_GGUF_STRING) { /* rd_str's checks, with a message formatted only on failure */
      const uint64_t at = r->at;
      if (remain(r) < 8)
        return bad(r, "the length of string %llu of the array at offset %llu needs 8 bytes, but the file ends at "
                   "%llu", (unsigned long long)i, (unsigned long long)at, (unsigned long long)r->size);
      const uint64_t len = le(r->p + at, 8);
      if (len > remain(r) - 8)
        return bad(r, "string %llu of the array at offset %llu has length %llu, but only %llu bytes remain in the "
                   "file", (unsigned long long)i, (unsigned long long)at, (unsigned long long)len,
                   (unsigned long long)(remain(r) - 8));
      if (kv != NULL) kv->str_at[i] = at;
      r->at += 8 + len;
    } else if (!rd_value(r, CLAI_GGUF_ARRAY, depth + 1, NULL)) {
      return 0;
    }
  }
  return 1;
}

/* ---- hash tables of keys and tensor names ---------------------------------------------------------------- */

static uint64_t hash_bytes(const void *p, uint64_t n) { return clai__hash64(p, (size_t)n, 0x6767756600000000ULL); }

/* The position of the entry named (s, n), or -1. at/len give each position's name. */
static int64_t index_find(const clai_gguf *g, const gguf_index *ix, int tensors, const void *s, uint64_t n) {
  if (ix->slot == NULL) return -1;
  for (uint64_t h = hash_bytes(s, n) & ix->mask;; h = (h + 1) & ix->mask) {
    uint64_t v = ix->slot[h];
    if (v == 0) return -1;
    uint64_t at = tensors ? g->tensors[v - 1].name_at : g->kv[v - 1].key_at;
    uint64_t len = tensors ? g->tensors[v - 1].name_len : g->kv[v - 1].key_len;
    if (len == n && memcmp(g->map + at, s, (size_t)n) == 0) return (int64_t)(v - 1);
  }
}

/* Builds the index of n entries (keys, or tensor names when tensors is 1); a name seen before is an error
 * naming both positions. */
static int index_build(reader *r, clai_gguf *g, gguf_index *ix, int tensors, uint64_t n) {
  uint64_t cap = 16;
  while (cap < 2 * n) cap *= 2; /* n entries were read from the file, so this cannot overflow */
  ix->slot = calloc((size_t)cap, sizeof *ix->slot);
  if (ix->slot == NULL) {
    r->oom = 1;
    return bad(r, "out of memory for the index of %llu %s", (unsigned long long)n, tensors ? "tensors" : "kvs");
  }
  ix->mask = cap - 1;
  for (uint64_t i = 0; i < n; i++) {
    uint64_t at = tensors ? g->tensors[i].name_at : g->kv[i].key_at;
    uint64_t len = tensors ? g->tensors[i].name_len : g->kv[i].key_len;
    int64_t dup = index_find(g, ix, tensors, g->map + at, len);
    if (dup >= 0) {
      char nm[300];
      snprintf(r->where, sizeof r->where, "%s %llu '%s'", tensors ? "tensor" : "kv", (unsigned long long)i,
               show(g->map + at, len, nm, sizeof nm));
      return bad(r, "the %s at offset %llu repeats that of %s %lld", tensors ? "name" : "key",
                 (unsigned long long)(at - 8), tensors ? "tensor" : "kv", (long long)dup);
    }
    uint64_t h = hash_bytes(g->map + at, len) & ix->mask;
    while (ix->slot[h] != 0) h = (h + 1) & ix->mask;
    ix->slot[h] = i + 1;
  }
  return 1;
}

/* Makes room for entry i of an array that grows by doubling as entries are read (never from a count in the
 * file, so a hostile count costs nothing before the entries are there). */
static int grow(reader *r, void **arr, uint64_t *cap, uint64_t i, size_t each, const char *what) {
  if (i < *cap) return 1;
  uint64_t ncap = *cap ? *cap * 2 : 16;
  void *p = realloc(*arr, (size_t)ncap * each); /* ncap <= 2 * the file's size: no overflow */
  if (p == NULL) {
    r->oom = 1;
    return bad(r, "out of memory for %llu %s", (unsigned long long)ncap, what);
  }
  memset((char *)p + *cap * each, 0, (size_t)(ncap - *cap) * each);
  *arr = p;
  *cap = ncap;
  return 1;
}

/* ---- open ------------------------------------------------------------------------------------------------ */

static int parse_header(reader *r, clai_gguf *g, uint64_t *ntensors, uint64_t *nkv) {
  snprintf(r->where, sizeof r->where, "header");
  if (r->size < 4 || memcmp(r->p, "GGUF", 4) != 0) {
    char m[40];
    return bad(r, "not a GGUF file: it starts with '%s', not 'GGUF'", show(r->p, r->size < 4 ? r->size : 4, m, sizeof m));
  }
  r->at = 4;
  if (!rd_u32(r, "the version", &g->version)) return 0;
  if (g->version == 1)
    return bad(r, "GGUF version 1 (32-bit counts and lengths) is not supported; convert the file to version 3");
  if (g->version == 0x02000000u || g->version == 0x03000000u)
    return bad(r, "a big-endian GGUF file (version %u byte-swapped) is not supported", g->version >> 24);
  if (g->version != 2 && g->version != 3)
    return bad(r, "GGUF version %u is not supported (2 and 3 are)", g->version);
  /* The least a tensor info takes (empty name, one dim) and the least a kv does (empty key, one byte). */
  uint64_t tensor_at = r->at;
  if (!rd_u64(r, "the tensor count", ntensors) || !rd_count(r, "the kv count", 8 + 4 + 1, nkv)) return 0;
  if (*ntensors > remain(r) / 32)
    return bad(r, "the tensor count at offset %llu is %llu, but the %llu bytes left in the file hold at most %llu",
               (unsigned long long)tensor_at, (unsigned long long)*ntensors, (unsigned long long)remain(r),
               (unsigned long long)(remain(r) / 32));
  return 1;
}

static int parse_kvs(reader *r, clai_gguf *g, uint64_t nkv) {
  uint64_t cap = 0;
  for (uint64_t i = 0; i < nkv; i++) {
    if (!grow(r, (void **)&g->kv, &cap, i, sizeof *g->kv, "kvs")) return 0;
    gguf_kv *kv = &g->kv[i];
    g->nkv = (int64_t)i + 1; /* from here on close() frees this entry */
    char k[300];
    snprintf(r->where, sizeof r->where, "kv %llu", (unsigned long long)i);
    uint64_t key_at = r->at;
    if (!rd_str(r, "the key", &kv->key_at, &kv->key_len)) return 0;
    if (kv->key_len > GGUF_MAX_KEY)
      return bad(r, "the key at offset %llu is %llu bytes long (at most %d)", (unsigned long long)key_at,
                 (unsigned long long)kv->key_len, GGUF_MAX_KEY);
    snprintf(r->where, sizeof r->where, "kv %llu '%s'", (unsigned long long)i,
             show(r->p + kv->key_at, kv->key_len, k, sizeof k));
    uint64_t type_at = r->at;
    if (!rd_u32(r, "the value type", &kv->type)) return 0;
    if (kv->type > CLAI_GGUF_FLOAT64)
      return bad(r, "the value type at offset %llu is %u, not a GGUF type (0 to 12)", (unsigned long long)type_at,
                 kv->type);
    if (!rd_value(r, kv->type, 0, kv)) return 0;
  }
  return index_build(r, g, &g->kv_index, 0, nkv);
}

static int set_alignment(reader *r, clai_gguf *g) {
  g->alignment = GGUF_DEFAULT_ALIGN;
  int64_t i = index_find(g, &g->kv_index, 0, "general.alignment", 17);
  if (i < 0) return 1;
  const gguf_kv *kv = &g->kv[i];
  snprintf(r->where, sizeof r->where, "kv %lld 'general.alignment'", (long long)i);
  if (kv->type != CLAI_GGUF_UINT32) return bad(r, "the alignment is %s, not uint32", type_name(kv->type));
  uint64_t a = le(g->map + kv->val_at, 4);
  if (a == 0 || (a & (a - 1)) != 0)
    return bad(r, "the alignment at offset %llu is %llu, not a power of two", (unsigned long long)kv->val_at,
               (unsigned long long)a);
  g->alignment = a;
  return 1;
}

static int parse_tensor(reader *r, clai_gguf *g, uint64_t i) {
  gguf_tensor *t = &g->tensors[i];
  char nm[300];
  snprintf(r->where, sizeof r->where, "tensor %llu", (unsigned long long)i);
  if (!rd_str(r, "the name", &t->name_at, &t->name_len)) return 0;
  snprintf(r->where, sizeof r->where, "tensor %llu '%s'", (unsigned long long)i,
           show(r->p + t->name_at, t->name_len, nm, sizeof nm));
  uint32_t nd;
  uint64_t nd_at = r->at;
  if (!rd_u32(r, "n_dims", &nd)) return 0;
  if (nd < 1 || nd > GGUF_MAX_NDIM)
    return bad(r, "n_dims at offset %llu is %u, not 1 to %d", (unsigned long long)nd_at, nd, GGUF_MAX_NDIM);
  t->ndim = (int)nd;
  uint64_t prod = 1; /* of the dims, 0 counted as 1: a bound that clai_tensor_init's checks will also meet */
  for (uint32_t d = 0; d < nd; d++) {
    uint64_t v, v_at = r->at;
    char w[32];
    snprintf(w, sizeof w, "ne[%u]", d);
    if (!rd_u64(r, w, &v)) return 0;
    if (v > (uint64_t)INT64_MAX)
      return bad(r, "ne[%u] at offset %llu is %llu, beyond INT64_MAX", d, (unsigned long long)v_at,
                 (unsigned long long)v);
    if (!clai__mul_ok(prod, v > 0 ? v : 1, &prod) || prod > (uint64_t)INT64_MAX)
      return bad(r, "the element count (ne up to ne[%u] at offset %llu) overflows a 64-bit integer", d,
                 (unsigned long long)v_at);
    t->ne[d] = (int64_t)v;
  }
  uint64_t type_at = r->at, off_at;
  if (!rd_u32(r, "the type", &t->type)) return 0;
  const struct ggml_type *ty = ggml_type_get(t->type);
  if (ty == NULL)
    return bad(r, "the type at offset %llu is %u, which is not a ggml type this reader knows", (unsigned long long)type_at,
               t->type);
  off_at = r->at;
  if (!rd_u64(r, "the offset", &t->offset)) return 0;
  if (t->offset % g->alignment != 0)
    return bad(r, "the offset at offset %llu is %llu, not a multiple of the alignment %llu", (unsigned long long)off_at,
               (unsigned long long)t->offset, (unsigned long long)g->alignment);
  if ((uint64_t)t->ne[0] % ty->block != 0)
    return bad(r, "ne[0] is %lld, not a multiple of %s's block of %u values", (long long)t->ne[0], ty->name, ty->block);
  uint64_t numel = 1, bytes;
  for (int d = 0; d < t->ndim; d++) numel *= (uint64_t)t->ne[d]; /* <= prod, no overflow */
  if (!clai__mul_ok(numel / ty->block, ty->block_bytes, &bytes))
    return bad(r, "the byte size of %llu %s values overflows", (unsigned long long)numel, ty->name);
  t->bytes = bytes;
  return 1;
}

/* Checks a tensor's data against the file, once the data section's start is known, and makes its offset
 * absolute. */
static int check_tensor_data(reader *r, clai_gguf *g, uint64_t i) {
  gguf_tensor *t = &g->tensors[i];
  char nm[300];
  snprintf(r->where, sizeof r->where, "tensor %llu '%s'", (unsigned long long)i,
           show(g->map + t->name_at, t->name_len, nm, sizeof nm));
  if (g->data_at > g->size || t->offset > g->size - g->data_at)
    return bad(r, "data at %llu bytes into the data section (which starts at %llu) lies past the end of the file "
               "(%llu bytes)", (unsigned long long)t->offset, (unsigned long long)g->data_at,
               (unsigned long long)g->size);
  uint64_t at = g->data_at + t->offset;
  if (t->bytes > g->size - at) {
    char end[64];
    if (t->bytes <= UINT64_MAX - at) snprintf(end, sizeof end, "%llu", (unsigned long long)(at + t->bytes));
    else snprintf(end, sizeof end, "%llu + %llu", (unsigned long long)at, (unsigned long long)t->bytes);
    return bad(r, "data [%llu, %s) runs past the end of the file (%llu bytes)", (unsigned long long)at, end,
               (unsigned long long)g->size);
  }
  t->offset = at;
  return 1;
}

static int parse(reader *r, clai_gguf *g) {
  uint64_t ntensors, nkv, cap = 0;
  if (!parse_header(r, g, &ntensors, &nkv) || !parse_kvs(r, g, nkv) || !set_alignment(r, g)) return 0;
  if (ntensors > remain(r) / 32) {
    snprintf(r->where, sizeof r->where, "header");
    return bad(r, "the tensor count at offset 8 is %llu, but the %llu bytes left after the kvs hold at most %llu",
               (unsigned long long)ntensors, (unsigned long long)remain(r), (unsigned long long)(remain(r) / 32));
  }
  for (uint64_t i = 0; i < ntensors; i++)
    if (!grow(r, (void **)&g->tensors, &cap, i, sizeof *g->tensors, "tensors") || !parse_tensor(r, g, i)) return 0;
  g->ntensors = (int64_t)ntensors;
  if (!index_build(r, g, &g->tensor_index, 1, ntensors)) return 0;
  /* The data section: from the end of the infos rounded up to the alignment (which may be past the end of a
   * file that has no tensor data). */
  uint64_t pad = (g->alignment - r->at % g->alignment) % g->alignment;
  g->data_at = r->at + pad; /* r->at <= the file size and alignment < 2^32: no overflow */
  for (uint64_t i = 0; i < ntensors; i++)
    if (!check_tensor_data(r, g, i)) return 0;
  return 1;
}

/* The message of the last failed accessor call of this thread, and the object it was on. Accessors take a
 * const clai_gguf that several threads may read at once, so the message cannot live on the object. */
static _Thread_local struct {
  const clai_gguf *g;
  char msg[512];
} last_error;

void clai_gguf_close(clai_gguf *g) {
  if (g == NULL) return;
  if (last_error.g == g) last_error.g = NULL; /* a later object at the same address starts clean */
  if (g->kv != NULL)
    for (int64_t i = 0; i < g->nkv; i++) free(g->kv[i].str_at);
  free(g->kv);
  free(g->tensors);
  free(g->kv_index.slot);
  free(g->tensor_index.slot);
  if (g->map != NULL) munmap((void *)g->map, (size_t)g->size);
  free(g);
}

static void set_err(char *errbuf, size_t errcap, const char *fmt, ...) CLAI__PRINTF(3, 4);
static void set_err(char *errbuf, size_t errcap, const char *fmt, ...) {
  if (errbuf == NULL || errcap == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, errcap, fmt, ap);
  va_end(ap);
}

clai_status clai_gguf_open(clai_gguf **out, const char *path, char *errbuf, size_t errcap) {
  if (errbuf != NULL && errcap > 0) errbuf[0] = '\0';
  if (out != NULL) *out = NULL;
  if (out == NULL || path == NULL) {
    set_err(errbuf, errcap, "clai_gguf_open: %s is NULL", out == NULL ? "out" : "path");
    return CLAI_E_INVALID_ARG;
  }
  clai_status st = CLAI_E_IO;
  struct stat sb;
  clai_gguf *g = calloc(1, sizeof *g);
  int fd = -1;
  if (g == NULL) {
    set_err(errbuf, errcap, "%s: out of memory", path);
    return CLAI_E_OUT_OF_MEMORY;
  }
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    set_err(errbuf, errcap, "%s: cannot open: %s", path, strerror(errno));
    goto fail;
  }
  if (fstat(fd, &sb) != 0) {
    set_err(errbuf, errcap, "%s: cannot stat: %s", path, strerror(errno));
    goto fail;
  }
  if (!S_ISREG(sb.st_mode)) {
    set_err(errbuf, errcap, "%s: not a regular file", path);
    goto fail;
  }
  if ((uint64_t)sb.st_size > (uint64_t)SIZE_MAX) {
    set_err(errbuf, errcap, "%s: %llu bytes do not fit the address space", path, (unsigned long long)sb.st_size);
    goto fail;
  }
  g->size = (uint64_t)sb.st_size;
  if (g->size == 0) { /* mmap cannot map nothing */
    st = CLAI_E_FORMAT;
    set_err(errbuf, errcap, "%s: header: the file is empty, not a GGUF file", path);
    goto fail;
  }
  void *m = mmap(NULL, (size_t)g->size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (m == MAP_FAILED) {
    set_err(errbuf, errcap, "%s: cannot map %llu bytes: %s", path, (unsigned long long)g->size, strerror(errno));
    goto fail;
  }
  g->map = m;
  close(fd);
  fd = -1;
  reader r;
  memset(&r, 0, sizeof r);
  r.p = g->map, r.size = g->size, r.path = path, r.err = errbuf, r.errcap = errcap;
  if (!parse(&r, g)) {
    st = r.oom ? CLAI_E_OUT_OF_MEMORY : CLAI_E_FORMAT;
    goto fail;
  }
  *out = g;
  return CLAI_OK;
fail:
  if (fd >= 0) close(fd);
  clai_gguf_close(g);
  return st;
}

/* ---- accessors ------------------------------------------------------------------------------------------- */

static clai_status gfail(const clai_gguf *g, clai_status st, const char *fmt, ...) CLAI__PRINTF(3, 4);
static clai_status gfail(const clai_gguf *g, clai_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error.msg, sizeof last_error.msg, fmt, ap);
  va_end(ap);
  last_error.g = g;
  return st;
}

const char *clai_gguf_errmsg(const clai_gguf *g) {
  if (g == NULL) return "no GGUF file (NULL)";
  return last_error.g == g ? last_error.msg : "";
}

uint32_t clai_gguf_version(const clai_gguf *g) { return g != NULL ? g->version : 0; }
uint64_t clai_gguf_alignment(const clai_gguf *g) { return g != NULL ? g->alignment : 0; }
int64_t clai_gguf_kv_count(const clai_gguf *g) { return g != NULL ? g->nkv : -1; }
int64_t clai_gguf_tensor_count(const clai_gguf *g) { return g != NULL ? g->ntensors : -1; }

int64_t clai_gguf_find_key(const clai_gguf *g, const char *key) {
  if (g == NULL || key == NULL) return -1;
  return index_find(g, &g->kv_index, 0, key, strlen(key));
}

const char *clai_gguf_key(const clai_gguf *g, int64_t i, size_t *len) {
  if (g == NULL || i < 0 || i >= g->nkv) {
    if (len != NULL) *len = 0;
    return NULL;
  }
  if (len != NULL) *len = (size_t)g->kv[i].key_len;
  return (const char *)g->map + g->kv[i].key_at;
}

int clai_gguf_kv_type(const clai_gguf *g, int64_t i) {
  return g != NULL && i >= 0 && i < g->nkv ? (int)g->kv[i].type : -1;
}

/* The entry of key, or NULL with the accessor's failure recorded. */
static const gguf_kv *lookup(const clai_gguf *g, const char *fn, const char *key, const void *out, clai_status *st) {
  if (g == NULL) {
    *st = CLAI_E_INVALID_ARG;
    return NULL;
  }
  if (key == NULL || out == NULL) {
    *st = gfail(g, CLAI_E_INVALID_ARG, "%s: %s is NULL", fn, key == NULL ? "key" : "the output");
    return NULL;
  }
  int64_t i = index_find(g, &g->kv_index, 0, key, strlen(key));
  if (i < 0) {
    *st = gfail(g, CLAI_E_NOT_FOUND, "%s: no key '%s' in the file", fn, key);
    return NULL;
  }
  return &g->kv[i];
}

static clai_status wrong_type(const clai_gguf *g, const char *fn, const char *key, const gguf_kv *kv,
                              const char *want) {
  if (kv->type == CLAI_GGUF_ARRAY)
    return gfail(g, CLAI_E_DTYPE, "%s: key '%s' is an array of %s, not %s", fn, key, type_name(kv->elem_type), want);
  return gfail(g, CLAI_E_DTYPE, "%s: key '%s' is %s, not %s", fn, key, type_name(kv->type), want);
}

/* An integer scalar at p of GGUF type `type` (not float, string or array). */
static int read_int(const unsigned char *p, uint32_t type, int64_t *v, uint64_t *u, int *is_unsigned) {
  uint64_t x = le(p, (int)scalar_size(type));
  *is_unsigned = 0;
  switch (type) {
  case CLAI_GGUF_INT8: *v = (int8_t)x; return 1;
  case CLAI_GGUF_INT16: *v = (int16_t)x; return 1;
  case CLAI_GGUF_INT32: *v = (int32_t)x; return 1;
  case CLAI_GGUF_INT64: memcpy(v, &x, 8); return 1;
  case CLAI_GGUF_UINT8:
  case CLAI_GGUF_UINT16:
  case CLAI_GGUF_UINT32:
  case CLAI_GGUF_UINT64:
  case CLAI_GGUF_BOOL:
    *u = x;
    *is_unsigned = 1;
    return 1;
  }
  return 0;
}

clai_status clai_gguf_get_int(const clai_gguf *g, const char *key, int64_t *out) {
  const char *fn = "clai_gguf_get_int";
  clai_status st;
  const gguf_kv *kv = lookup(g, fn, key, out, &st);
  if (kv == NULL) return st;
  int64_t v = 0;
  uint64_t u = 0;
  int uns;
  if (!read_int(g->map + kv->val_at, kv->type, &v, &u, &uns)) return wrong_type(g, fn, key, kv, "an integer");
  if (uns && u > (uint64_t)INT64_MAX)
    return gfail(g, CLAI_E_OVERFLOW, "%s: key '%s' is %llu, beyond INT64_MAX", fn, key, (unsigned long long)u);
  *out = uns ? (int64_t)u : v;
  return CLAI_OK;
}

clai_status clai_gguf_get_float(const clai_gguf *g, const char *key, double *out) {
  const char *fn = "clai_gguf_get_float";
  clai_status st;
  const gguf_kv *kv = lookup(g, fn, key, out, &st);
  if (kv == NULL) return st;
  const unsigned char *p = g->map + kv->val_at;
  int64_t v = 0;
  uint64_t u = 0;
  int uns;
  if (kv->type == CLAI_GGUF_FLOAT32) {
    uint32_t x = (uint32_t)le(p, 4);
    float f;
    memcpy(&f, &x, 4);
    *out = f;
  } else if (kv->type == CLAI_GGUF_FLOAT64) {
    uint64_t x = le(p, 8);
    memcpy(out, &x, 8);
  } else if (kv->type != CLAI_GGUF_BOOL && read_int(p, kv->type, &v, &u, &uns)) {
    *out = uns ? (double)u : (double)v;
  } else {
    return wrong_type(g, fn, key, kv, "a number");
  }
  return CLAI_OK;
}

clai_status clai_gguf_get_string(const clai_gguf *g, const char *key, const char **str, size_t *len) {
  const char *fn = "clai_gguf_get_string";
  clai_status st;
  const gguf_kv *kv = lookup(g, fn, key, str, &st);
  if (kv == NULL) return st;
  if (kv->type != CLAI_GGUF_STRING) return wrong_type(g, fn, key, kv, "a string");
  *str = (const char *)g->map + kv->val_at;
  if (len != NULL) *len = (size_t)kv->len;
  return CLAI_OK;
}

clai_status clai_gguf_get_array(const clai_gguf *g, const char *key, int *elem_type, int64_t *len) {
  const char *fn = "clai_gguf_get_array";
  clai_status st;
  const gguf_kv *kv = lookup(g, fn, key, len, &st);
  if (kv == NULL) return st;
  if (kv->type != CLAI_GGUF_ARRAY) return wrong_type(g, fn, key, kv, "an array");
  if (elem_type != NULL) *elem_type = (int)kv->elem_type;
  *len = (int64_t)kv->len; /* at most the file's size */
  return CLAI_OK;
}

clai_status clai_gguf_get_array_data(const clai_gguf *g, const char *key, const void **data) {
  const char *fn = "clai_gguf_get_array_data";
  clai_status st;
  const gguf_kv *kv = lookup(g, fn, key, data, &st);
  if (kv == NULL) return st;
  if (kv->type != CLAI_GGUF_ARRAY || scalar_size(kv->elem_type) == 0)
    return wrong_type(g, fn, key, kv, "an array of numbers or bools");
  *data = g->map + kv->val_at;
  return CLAI_OK;
}

clai_status clai_gguf_get_array_string(const clai_gguf *g, const char *key, int64_t j, const char **str,
                                       size_t *len) {
  const char *fn = "clai_gguf_get_array_string";
  clai_status st;
  const gguf_kv *kv = lookup(g, fn, key, str, &st);
  if (kv == NULL) return st;
  if (kv->type != CLAI_GGUF_ARRAY || kv->elem_type != CLAI_GGUF_STRING)
    return wrong_type(g, fn, key, kv, "an array of strings");
  if (j < 0 || (uint64_t)j >= kv->len)
    return gfail(g, CLAI_E_INVALID_ARG, "%s: index %lld is outside the %llu strings of key '%s'", fn, (long long)j,
                 (unsigned long long)kv->len, key);
  uint64_t at = kv->str_at[j];
  *str = (const char *)g->map + at + 8;
  if (len != NULL) *len = (size_t)le(g->map + at, 8);
  return CLAI_OK;
}

/* ---- the tensor directory and loading --------------------------------------------------------------------- */

static void fill_info(const clai_gguf *g, const gguf_tensor *t, clai_gguf_tensor_info *info) {
  memset(info, 0, sizeof *info);
  info->name = (const char *)g->map + t->name_at;
  info->name_len = (size_t)t->name_len;
  info->ggml_type = t->type;
  info->dtype = ggml_type_get(t->type)->dtype; /* open refused unknown types */
  info->ndim = t->ndim;
  for (int d = 0; d < t->ndim; d++) info->shape[t->ndim - 1 - d] = t->ne[d];
  info->offset = t->offset;
  info->bytes = t->bytes;
}

clai_status clai_gguf_tensor_info_get(const clai_gguf *g, int64_t i, clai_gguf_tensor_info *info) {
  if (g == NULL) return CLAI_E_INVALID_ARG;
  if (info == NULL) return gfail(g, CLAI_E_INVALID_ARG, "clai_gguf_tensor_info_get: info is NULL");
  if (i < 0 || i >= g->ntensors)
    return gfail(g, CLAI_E_INVALID_ARG, "clai_gguf_tensor_info_get: position %lld is outside the %lld tensors",
                 (long long)i, (long long)g->ntensors);
  fill_info(g, &g->tensors[i], info);
  return CLAI_OK;
}

int64_t clai_gguf_find_tensor(const clai_gguf *g, const char *name) {
  if (g == NULL || name == NULL) return -1;
  return index_find(g, &g->tensor_index, 1, name, strlen(name));
}

/* The directory entry of tensor `name`, checked loadable, or a status with the message on ctx. */
static clai_status loadable(clai_context *ctx, const clai_gguf *g, const char *name, const char *fn,
                            clai_gguf_tensor_info *info) {
  if (g == NULL || name == NULL)
    return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: %s is NULL", fn, g == NULL ? "the GGUF file" : "name");
  int64_t i = clai_gguf_find_tensor(g, name);
  if (i < 0) return clai__error(ctx, CLAI_E_NOT_FOUND, "%s: no tensor '%s' in the file", fn, name);
  fill_info(g, &g->tensors[i], info);
  if (info->dtype < 0)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: tensor '%s' is %s (GGUF type %u), which libclai does not load", fn,
                       name, clai_gguf_ggml_type_name(info->ggml_type), info->ggml_type);
  return CLAI_OK;
}

clai_status clai_gguf_tensor_load(clai_context *ctx, const clai_gguf *g, const char *name, clai_tensor **out) {
  const char *fn = "clai_gguf_tensor_load";
  if (out != NULL) *out = NULL;
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  if (out == NULL) return clai__error(ctx, CLAI_E_INVALID_ARG, "%s: out is NULL", fn);
  clai_gguf_tensor_info info;
  clai_status st = loadable(ctx, g, name, fn, &info);
  if (st != CLAI_OK) return st;
  clai_tensor *t = NULL;
  st = clai_tensor_init(ctx, &t, (clai_dtype)info.dtype, info.ndim, info.shape);
  if (st != CLAI_OK) return st; /* its message names the dtype and shape */
  /* Straight from the mapping: the write is blocking, so the pages are read before it returns. */
  st = clai_tensor_write(t, g->map + info.offset, (size_t)info.bytes);
  if (st != CLAI_OK) {
    clai_tensor_free(t);
    return st;
  }
  *out = t;
  return CLAI_OK;
}

clai_status clai_gguf_tensor_load_into(clai_context *ctx, const clai_gguf *g, const char *name, clai_tensor *dst) {
  const char *fn = "clai_gguf_tensor_load_into";
  if (ctx == NULL) return CLAI_E_INVALID_ARG;
  clai_gguf_tensor_info info;
  clai_status st = loadable(ctx, g, name, fn, &info);
  if (st != CLAI_OK) return st;
  if ((st = clai__check_out_any(ctx, dst, fn, "dst")) != CLAI_OK) return st;
  if ((int)clai_tensor_dtype(dst) != info.dtype)
    return clai__error(ctx, CLAI_E_DTYPE, "%s: tensor '%s' is %s, dst is %s", fn, name,
                       clai_dtype_name((clai_dtype)info.dtype), clai_dtype_name(clai_tensor_dtype(dst)));
  int64_t numel = 1;
  for (int d = 0; d < info.ndim; d++) numel *= info.shape[d]; /* checked at open */
  if (clai_tensor_numel(dst) != numel) {
    char a[160], b[160];
    return clai__error(ctx, CLAI_E_SHAPE, "%s: tensor '%s' %s has %lld elements, dst %s has %lld", fn, name,
                       clai__shape_str(info.ndim, info.shape, a, sizeof a), (long long)numel,
                       clai__shape_str(dst->ndim, dst->shape, b, sizeof b), (long long)clai_tensor_numel(dst));
  }
  if (!clai_tensor_is_contiguous(dst))
    return clai__error(ctx, CLAI_E_NOT_CONTIGUOUS, "%s: dst is not dense in row-major order", fn);
  return clai_tensor_write(dst, g->map + info.offset, (size_t)info.bytes);
}
