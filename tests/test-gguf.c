/* test-gguf.c - the GGUF reader (lib/gguf.c): files written by tests/gguf-writer.h read back through every
 * accessor (every value type, nested arrays, versions 2 and 3, default and custom alignments), the tensor
 * directory, tensors loaded into device tensors bit-exact, each malformed field refused with CLAI_E_FORMAT
 * and a message naming it, and a mutation fuzz: thousands of damaged files (byte flips, every truncation of
 * the header, counts and lengths replaced by huge values) that must fail cleanly or open and then answer
 * every accessor without reading outside the file. The fuzz and the format checks need no device and run
 * on any machine; the loading tests pass with a "# skipped" line when there is no OpenCL device.
 *
 * CLAI_LLM_MODEL, when set, names SmolLM2-135M-Instruct.Q4_1.gguf, which is checked against what that model
 * is known to hold. CLAI_TEST_FUZZ_ITERS sets the number of random mutations per base file. */
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gguf-writer.h"
#include "testutil.h"

#define FUZZ_ITERS 1500

static char tmpdir[1024];

/* ---- helpers ---------------------------------------------------------------------------------------------- */

static void tmp_path(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", tmpdir, name); }

static void write_bytes(const char *path, const unsigned char *p, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  if (n > 0) assert_int_equal(fwrite(p, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

static clai_gguf *open_ok(const char *path) {
  char err[1024];
  clai_gguf *g = NULL;
  clai_status st = clai_gguf_open(&g, path, err, sizeof err);
  if (st != CLAI_OK) fail_msg("clai_gguf_open(%s) -> %s: %s", path, clai_status_name(st), err);
  assert_non_null(g);
  return g;
}

/* Opens bytes that must be refused with `want` and a message containing every needle (NULL-terminated). */
static void expect_refused(const unsigned char *p, size_t n, clai_status want, const char *const *needles) {
  char path[1100], err[1024];
  tmp_path(path, sizeof path, "bad.gguf");
  write_bytes(path, p, n);
  clai_gguf *g = (clai_gguf *)(uintptr_t)1;
  clai_status st = clai_gguf_open(&g, path, err, sizeof err);
  if (st != want) fail_msg("expected %s, got %s: %s", clai_status_name(want), clai_status_name(st), err);
  assert_null(g);
  for (int i = 0; needles[i] != NULL; i++)
    if (strstr(err, needles[i]) == NULL) fail_msg("message \"%s\" does not mention \"%s\"", err, needles[i]);
  print_message("# refused: %s\n", err);
}
#define REFUSED(p, n, ...) expect_refused(p, n, CLAI_E_FORMAT, (const char *const[]){__VA_ARGS__, NULL})

/* The k-th field of the built file whose description is `what`. */
static const clait_gguf_field *field(const clait_gguf *w, const char *what, int k) {
  for (size_t i = 0; i < w->nfields; i++)
    if (strcmp(w->fields[i].what, what) == 0 && k-- == 0) return &w->fields[i];
  fail_msg("no field '%s' in the file", what);
  return NULL;
}

static void patch(unsigned char *p, const clait_gguf_field *f, uint64_t v) {
  for (int i = 0; i < f->width; i++) p[f->at + (size_t)i] = (unsigned char)(v >> (8 * i));
}

/* Whether this machine has an OpenCL device: tests that need one print a skip line and pass without one
 * (the same rule as clait_main: only "no device at all" skips; devices that fail to start fail). */
static int have_device(void) {
  static int known = -1;
  if (known >= 0) return known;
  char err[4096];
  clai_context *ctx = NULL;
  clai_status st = clai_context_init_ex(&ctx, NULL, err, sizeof err);
  if (st == CLAI_E_NO_DEVICE && strstr(err, "every candidate failed") == NULL) {
    known = 0;
  } else {
    if (st != CLAI_OK) fail_msg("clai_context_init: %s: %s", clai_status_name(st), err);
    known = 1;
  }
  clai_context_free(ctx);
  return known;
}

/* ---- a file with every value type and a tensor of every kind ---------------------------------------------- */

typedef struct tensor_spec {
  const char *name;
  uint32_t type;
  int dtype;
  int ndim;
  int64_t shape[4];
} tensor_spec;

static const tensor_spec SPECS[] = {
    {"w.f32", CLAIT_GGML_F32, CLAI_DTYPE_F32, 2, {3, 5}},
    {"w.f16", CLAIT_GGML_F16, CLAI_DTYPE_F16, 1, {7}},
    {"w.i32", CLAIT_GGML_I32, CLAI_DTYPE_I32, 3, {2, 3, 4}},
    {"w.4d", CLAIT_GGML_F32, CLAI_DTYPE_F32, 4, {2, 1, 3, 2}},
    {"w.empty", CLAIT_GGML_F32, CLAI_DTYPE_F32, 2, {4, 0}},
    {"w.q8_0", CLAIT_GGML_Q8_0, CLAI_DTYPE_Q8_0, 2, {3, 64}},
    {"w.q4_0", CLAIT_GGML_Q4_0, CLAI_DTYPE_Q4_0, 2, {2, 32}},
    {"w.q4_1", CLAIT_GGML_Q4_1, CLAI_DTYPE_Q4_1, 3, {2, 1, 96}},
    {"w.q6_k", CLAIT_GGML_Q6_K, CLAI_DTYPE_Q6_K, 2, {2, 256}},
    {"w.q4_k", CLAIT_GGML_Q4_K, CLAI_DTYPE_Q4_K, 3, {3, 1, 512}},
    {"w.q5_k", CLAIT_GGML_Q5_K, -1, 2, {1, 256}},
    {"w.bf16", CLAIT_GGML_BF16, -1, 1, {4}},
    {"w.i8", CLAIT_GGML_I8, -1, 1, {5}},
    {"w.f64", CLAIT_GGML_F64, -1, 2, {2, 2}},
    {"blk.0.attn_q.weight", CLAIT_GGML_Q5_1, -1, 2, {1, 32}},
};
#define NSPECS (sizeof SPECS / sizeof SPECS[0])

static int64_t spec_numel(const tensor_spec *s) {
  int64_t n = 1;
  for (int d = 0; d < s->ndim; d++) n *= s->shape[d];
  return n;
}

static int spec_from_floats(const tensor_spec *s) {
  return s->type == CLAIT_GGML_F32 || s->type == CLAIT_GGML_F16 || s->type == CLAIT_GGML_Q8_0 ||
         s->type == CLAIT_GGML_Q4_0 || s->type == CLAIT_GGML_Q4_1;
}

/* The floats tensor k is made from (for the types spec_from_floats), malloc'd. */
static float *spec_floats(int k) {
  const int64_t n = spec_numel(&SPECS[k]);
  float *v = malloc((size_t)n * sizeof *v + 4);
  assert_non_null(v);
  clait_rng rng = {0x9e3779b97f4a7c15ULL + (uint64_t)k};
  clait_fill(&rng, v, (size_t)n, -3.0f, 3.0f);
  return v;
}

/* Deterministic bytes for tensor k (valid data for every type: quantized from floats, or random bytes). */
static unsigned char *spec_data(int k, size_t *bytes) {
  const tensor_spec *s = &SPECS[k];
  const int64_t n = spec_numel(s);
  *bytes = clait_ggml_bytes(s->type, n);
  unsigned char *p = malloc(*bytes + 1);
  assert_non_null(p);
  clait_rng rng = {0x9e3779b97f4a7c15ULL + (uint64_t)k};
  if (spec_from_floats(s)) {
    float *v = spec_floats(k);
    clait_gguf_quantize(s->type, v, n, p);
    free(v);
  } else {
    for (size_t i = 0; i < *bytes; i++) p[i] = (unsigned char)clait_next(&rng);
  }
  return p;
}

static const uint8_t A_U8[] = {0, 1, 255};
static const int8_t A_I8[] = {-128, 0, 127, -1};
static const uint16_t A_U16[] = {65535, 7};
static const int16_t A_I16[] = {-32768, 32767, 0};
static const uint32_t A_U32[] = {4294967295u, 0, 42, 1};
static const int32_t A_I32[] = {INT32_MIN, INT32_MAX, -7};
static const float A_F32[] = {1.5f, -0.0f, 3.0e38f, 1e-40f};
static const uint8_t A_BOOL[] = {1, 0, 1};
static const uint64_t A_U64[] = {UINT64_MAX, 0};
static const int64_t A_I64[] = {INT64_MIN, INT64_MAX, -1};
static const double A_F64[] = {-2.25e300, 5e-324};
static const char *const A_STR[] = {"a", "", "ccc", "\xc4\xa0t", "tokens have spaces"};

static const struct array_spec {
  const char *key;
  uint32_t type;
  uint64_t n;
  const void *data;
  size_t es;
} ARRAYS[] = {
    {"a.u8", CLAI_GGUF_UINT8, 3, A_U8, 1},       {"a.i8", CLAI_GGUF_INT8, 4, A_I8, 1},
    {"a.u16", CLAI_GGUF_UINT16, 2, A_U16, 2},    {"a.i16", CLAI_GGUF_INT16, 3, A_I16, 2},
    {"a.u32", CLAI_GGUF_UINT32, 4, A_U32, 4},    {"a.i32", CLAI_GGUF_INT32, 3, A_I32, 4},
    {"a.f32", CLAI_GGUF_FLOAT32, 4, A_F32, 4},   {"a.bool", CLAI_GGUF_BOOL, 3, A_BOOL, 1},
    {"a.u64", CLAI_GGUF_UINT64, 2, A_U64, 8},    {"a.i64", CLAI_GGUF_INT64, 3, A_I64, 8},
    {"a.f64", CLAI_GGUF_FLOAT64, 2, A_F64, 8},   {"a.empty", CLAI_GGUF_UINT32, 0, A_U32, 4},
};
#define NARRAYS (sizeof ARRAYS / sizeof ARRAYS[0])

/* Every kind of kv (in this order), then every tensor of SPECS. alignment 0: the default, no key. */
static clait_gguf *values_file(uint32_t version, uint32_t alignment) {
  clait_gguf *w = clait_gguf_new(version);
  clait_gguf_str(w, "general.architecture", "llama");
  if (alignment != 0) clait_gguf_set_alignment(w, alignment);
  clait_gguf_u8(w, "s.u8", 250);
  clait_gguf_i8(w, "s.i8", -100);
  clait_gguf_u16(w, "s.u16", 65000);
  clait_gguf_i16(w, "s.i16", -30000);
  clait_gguf_u32(w, "s.u32", 4000000000u);
  clait_gguf_i32(w, "s.i32", -2000000000);
  clait_gguf_u64(w, "s.u64", 12345678901234ULL);
  clait_gguf_u64(w, "s.u64big", (1ULL << 63) + 5);
  clait_gguf_i64(w, "s.i64", INT64_MIN);
  clait_gguf_f32(w, "s.f32", 1e-5f);
  clait_gguf_f64(w, "s.f64", -2.25e300);
  clait_gguf_bool(w, "s.true", 1);
  clait_gguf_bool(w, "s.false", 0);
  clait_gguf_str(w, "s.str", "hello, GGUF");
  clait_gguf_str(w, "s.empty", "");
  clait_gguf_strn(w, "s.nul", "a\0b", 3);
  for (size_t i = 0; i < NARRAYS; i++) clait_gguf_arr(w, ARRAYS[i].key, ARRAYS[i].type, ARRAYS[i].n, ARRAYS[i].data);
  clait_gguf_arr_str(w, "a.str", 5, A_STR);
  clait_gguf_arr_str(w, "a.str0", 0, A_STR);
  /* [[1, 2, 3] (int32), ["x"], [[7] (uint8)]] */
  clait_gguf_key(w, "a.nested", CLAI_GGUF_ARRAY);
  clait_gguf_put_arr(w, CLAI_GGUF_ARRAY, 3);
  clait_gguf_put_arr(w, CLAI_GGUF_INT32, 3);
  for (uint32_t v = 1; v <= 3; v++) clait_gguf_put_u32(w, v);
  clait_gguf_put_arr(w, CLAI_GGUF_STRING, 1);
  clait_gguf_put_str(w, "x");
  clait_gguf_put_arr(w, CLAI_GGUF_ARRAY, 1);
  clait_gguf_put_arr(w, CLAI_GGUF_UINT8, 1);
  clait_gguf_put_u8(w, 7);
  for (size_t k = 0; k < NSPECS; k++) {
    size_t bytes;
    unsigned char *p = spec_data((int)k, &bytes);
    clait_gguf_tensor(w, SPECS[k].name, SPECS[k].type, SPECS[k].ndim, SPECS[k].shape, p, bytes);
    free(p);
  }
  return w;
}

/* The keys of values_file in order (with general.alignment second when set). */
static const char *const SCALAR_KEYS[] = {"s.u8",  "s.i8",  "s.u16",  "s.i16",   "s.u32",  "s.i32",
                                          "s.u64", "s.u64big", "s.i64", "s.f32",  "s.f64",  "s.true",
                                          "s.false", "s.str", "s.empty", "s.nul"};
#define NSCALARS (sizeof SCALAR_KEYS / sizeof SCALAR_KEYS[0])

static void check_scalars(const clai_gguf *g) {
  static const struct {
    const char *key;
    int64_t v;
  } ints[] = {{"s.u8", 250},          {"s.i8", -100},         {"s.u16", 65000},
              {"s.i16", -30000},      {"s.u32", 4000000000LL}, {"s.i32", -2000000000},
              {"s.u64", 12345678901234LL}, {"s.i64", INT64_MIN}, {"s.true", 1},
              {"s.false", 0}};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    int64_t v = 99;
    if (clai_gguf_get_int(g, ints[i].key, &v) != CLAI_OK) fail_msg("get_int %s: %s", ints[i].key, clai_gguf_errmsg(g));
    if (v != ints[i].v) fail_msg("get_int %s: %lld, expected %lld", ints[i].key, (long long)v, (long long)ints[i].v);
    double d = 0;
    clai_status st = clai_gguf_get_float(g, ints[i].key, &d);
    if (strstr(ints[i].key, "true") || strstr(ints[i].key, "false")) {
      assert_int_equal(st, CLAI_E_DTYPE); /* bools are not numbers to get_float */
    } else {
      assert_int_equal(st, CLAI_OK);
      assert_true(d == (double)ints[i].v);
    }
  }
  int64_t v = 99;
  double d = 0;
  assert_int_equal(clai_gguf_get_int(g, "s.u64big", &v), CLAI_E_OVERFLOW);
  assert_int_equal(v, 99);
  assert_non_null(strstr(clai_gguf_errmsg(g), "s.u64big"));
  assert_int_equal(clai_gguf_get_float(g, "s.u64big", &d), CLAI_OK);
  assert_true(d == 9223372036854775813.0);
  assert_int_equal(clai_gguf_get_float(g, "s.f32", &d), CLAI_OK);
  assert_true(d == (double)1e-5f);
  assert_int_equal(clai_gguf_get_float(g, "s.f64", &d), CLAI_OK);
  assert_true(d == -2.25e300);
  assert_int_equal(clai_gguf_get_int(g, "s.f32", &v), CLAI_E_DTYPE);
  assert_non_null(strstr(clai_gguf_errmsg(g), "'s.f32' is float32, not an integer"));
  assert_int_equal(v, 99);
  const char *s = NULL;
  size_t len = 99;
  assert_int_equal(clai_gguf_get_string(g, "s.str", &s, &len), CLAI_OK);
  assert_int_equal(len, 11);
  assert_memory_equal(s, "hello, GGUF", 11);
  assert_int_equal(clai_gguf_get_string(g, "s.empty", &s, &len), CLAI_OK);
  assert_int_equal(len, 0);
  assert_int_equal(clai_gguf_get_string(g, "s.nul", &s, NULL), CLAI_OK);
  assert_int_equal(clai_gguf_get_string(g, "s.nul", &s, &len), CLAI_OK);
  assert_int_equal(len, 3);
  assert_memory_equal(s, "a\0b", 3);
  assert_int_equal(clai_gguf_get_string(g, "s.i32", &s, &len), CLAI_E_DTYPE);
  assert_non_null(strstr(clai_gguf_errmsg(g), "'s.i32' is int32, not a string"));
  assert_int_equal(clai_gguf_get_string(g, "a.str", &s, &len), CLAI_E_DTYPE);
  assert_non_null(strstr(clai_gguf_errmsg(g), "array of string"));
  assert_int_equal(clai_gguf_get_float(g, "s.str", &d), CLAI_E_DTYPE);
  /* missing keys, NULL arguments */
  v = 99;
  assert_int_equal(clai_gguf_get_int(g, "no.such.key", &v), CLAI_E_NOT_FOUND);
  assert_int_equal(v, 99);
  assert_non_null(strstr(clai_gguf_errmsg(g), "no key 'no.such.key'"));
  assert_int_equal(clai_gguf_get_float(g, "s.", &d), CLAI_E_NOT_FOUND);
  assert_int_equal(clai_gguf_get_string(g, "", &s, &len), CLAI_E_NOT_FOUND);
  assert_int_equal(clai_gguf_get_int(g, NULL, &v), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_gguf_get_int(g, "s.u8", NULL), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_gguf_get_int(NULL, "s.u8", &v), CLAI_E_INVALID_ARG);
}

static void check_arrays(const clai_gguf *g) {
  for (size_t i = 0; i < NARRAYS; i++) {
    int et = -5;
    int64_t n = -5;
    const void *data = NULL;
    if (clai_gguf_get_array(g, ARRAYS[i].key, &et, &n) != CLAI_OK) fail_msg("%s: %s", ARRAYS[i].key, clai_gguf_errmsg(g));
    assert_int_equal(et, ARRAYS[i].type);
    assert_int_equal(n, ARRAYS[i].n);
    assert_int_equal(clai_gguf_get_array_data(g, ARRAYS[i].key, &data), CLAI_OK);
    assert_non_null(data);
    if (n > 0) assert_memory_equal(data, ARRAYS[i].data, ARRAYS[i].n * ARRAYS[i].es); /* little-endian host */
    const char *s;
    assert_int_equal(clai_gguf_get_array_string(g, ARRAYS[i].key, 0, &s, NULL), CLAI_E_DTYPE);
    int64_t v;
    assert_int_equal(clai_gguf_get_int(g, ARRAYS[i].key, &v), CLAI_E_DTYPE);
    assert_non_null(strstr(clai_gguf_errmsg(g), "is an array of"));
  }
  int et;
  int64_t n;
  size_t len;
  const char *s;
  const void *data;
  assert_int_equal(clai_gguf_get_array(g, "a.str", &et, &n), CLAI_OK);
  assert_int_equal(et, CLAI_GGUF_STRING);
  assert_int_equal(n, 5);
  for (int64_t j = 0; j < n; j++) {
    assert_int_equal(clai_gguf_get_array_string(g, "a.str", j, &s, &len), CLAI_OK);
    assert_int_equal(len, strlen(A_STR[j]));
    assert_memory_equal(s, A_STR[j], len);
  }
  assert_int_equal(clai_gguf_get_array_string(g, "a.str", 5, &s, &len), CLAI_E_INVALID_ARG);
  assert_non_null(strstr(clai_gguf_errmsg(g), "index 5 is outside the 5 strings of key 'a.str'"));
  assert_int_equal(clai_gguf_get_array_string(g, "a.str", -1, &s, &len), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_gguf_get_array_data(g, "a.str", &data), CLAI_E_DTYPE);
  assert_int_equal(clai_gguf_get_array(g, "a.str0", &et, &n), CLAI_OK);
  assert_int_equal(n, 0);
  assert_int_equal(clai_gguf_get_array_string(g, "a.str0", 0, &s, &len), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_gguf_get_array(g, "a.nested", &et, &n), CLAI_OK);
  assert_int_equal(et, CLAI_GGUF_ARRAY);
  assert_int_equal(n, 3);
  assert_int_equal(clai_gguf_get_array_data(g, "a.nested", &data), CLAI_E_DTYPE);
  assert_int_equal(clai_gguf_get_array_string(g, "a.nested", 0, &s, &len), CLAI_E_DTYPE);
  assert_int_equal(clai_gguf_get_array(g, "s.u8", &et, &n), CLAI_E_DTYPE);
  assert_non_null(strstr(clai_gguf_errmsg(g), "'s.u8' is uint8, not an array"));
  assert_int_equal(clai_gguf_get_array(g, "nope", &et, &n), CLAI_E_NOT_FOUND);
  assert_int_equal(clai_gguf_get_array(g, "a.u8", NULL, &n), CLAI_OK); /* elem_type may be NULL */
}

/* The directory of values_file's tensors against SPECS and the file's bytes. */
static void check_directory(const clai_gguf *g, const unsigned char *file, size_t size, uint64_t alignment) {
  assert_int_equal(clai_gguf_tensor_count(g), NSPECS);
  uint64_t prev_end = 0;
  for (size_t k = 0; k < NSPECS; k++) {
    const tensor_spec *sp = &SPECS[k];
    clai_gguf_tensor_info ti;
    assert_int_equal(clai_gguf_tensor_info_get(g, (int64_t)k, &ti), CLAI_OK);
    assert_int_equal(ti.name_len, strlen(sp->name));
    assert_memory_equal(ti.name, sp->name, ti.name_len);
    assert_int_equal(ti.ggml_type, sp->type);
    assert_int_equal(ti.dtype, sp->dtype);
    assert_int_equal(ti.ndim, sp->ndim);
    for (int d = 0; d < sp->ndim; d++) assert_int_equal(ti.shape[d], sp->shape[d]);
    assert_int_equal(ti.bytes, clait_ggml_bytes(sp->type, spec_numel(sp)));
    assert_int_equal(ti.offset % alignment, 0);
    /* laid out in order, each at the next multiple of the alignment after the previous one */
    if (k > 0) assert_int_equal(ti.offset, (prev_end + alignment - 1) / alignment * alignment);
    prev_end = ti.offset + ti.bytes;
    size_t bytes;
    unsigned char *want = spec_data((int)k, &bytes);
    assert_true(ti.offset + ti.bytes <= size);
    if (bytes > 0) assert_memory_equal(file + ti.offset, want, bytes);
    free(want);
    assert_int_equal(clai_gguf_find_tensor(g, sp->name), (int64_t)k);
  }
  assert_int_equal(clai_gguf_find_tensor(g, "w.f3"), -1);
  assert_int_equal(clai_gguf_find_tensor(g, "w.f32 "), -1);
  assert_int_equal(clai_gguf_find_tensor(g, NULL), -1);
  clai_gguf_tensor_info ti;
  assert_int_equal(clai_gguf_tensor_info_get(g, (int64_t)NSPECS, &ti), CLAI_E_INVALID_ARG);
  assert_non_null(strstr(clai_gguf_errmsg(g), "outside the"));
  assert_int_equal(clai_gguf_tensor_info_get(g, -1, &ti), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_gguf_tensor_info_get(g, 0, NULL), CLAI_E_INVALID_ARG);
  assert_string_equal(clai_gguf_ggml_type_name(CLAIT_GGML_Q4_1), "Q4_1");
  assert_string_equal(clai_gguf_ggml_type_name(CLAIT_GGML_BF16), "BF16");
  assert_string_equal(clai_gguf_ggml_type_name(4), "?");
  assert_string_equal(clai_gguf_ggml_type_name(UINT32_MAX), "?");
}

static unsigned char *slurp(const char *path, size_t *n) { return clait_read_file(path, n); }

static void test_values(void **state) {
  (void)state;
  static const struct {
    uint32_t version, alignment;
  } cases[] = {{2, 0}, {3, 0}, {3, 64}, {2, 1}, {3, 8}, {3, 4096}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    clait_gguf *w = values_file(cases[c].version, cases[c].alignment);
    char path[1100];
    tmp_path(path, sizeof path, "values.gguf");
    assert_int_equal(clait_gguf_write(w, path), 0);
    clai_gguf *g = open_ok(path);
    const uint64_t align = cases[c].alignment ? cases[c].alignment : 32;
    assert_int_equal(clai_gguf_version(g), cases[c].version);
    assert_int_equal(clai_gguf_alignment(g), align);
    const int64_t nkv = (int64_t)w->nkv;
    assert_int_equal(clai_gguf_kv_count(g), nkv);
    assert_int_equal(nkv, 1 + (cases[c].alignment != 0) + NSCALARS + NARRAYS + 3);
    assert_string_equal(clai_gguf_errmsg(g), ""); /* nothing failed on g yet */
    /* keys by position and by name, in the order written */
    size_t len;
    const char *k = clai_gguf_key(g, 0, &len);
    assert_int_equal(len, 20);
    assert_memory_equal(k, "general.architecture", 20);
    for (size_t i = 0; i < NSCALARS; i++) {
      const int64_t at = (int64_t)i + 1 + (cases[c].alignment != 0);
      k = clai_gguf_key(g, at, &len);
      assert_int_equal(len, strlen(SCALAR_KEYS[i]));
      assert_memory_equal(k, SCALAR_KEYS[i], len);
      assert_int_equal(clai_gguf_find_key(g, SCALAR_KEYS[i]), at);
    }
    for (int64_t i = 0; i < nkv; i++) {
      k = clai_gguf_key(g, i, &len);
      char key[128];
      snprintf(key, sizeof key, "%.*s", (int)len, k);
      assert_int_equal(clai_gguf_find_key(g, key), i);
      assert_in_range(clai_gguf_kv_type(g, i), 0, 12);
    }
    assert_int_equal(clai_gguf_kv_type(g, clai_gguf_find_key(g, "a.nested")), CLAI_GGUF_ARRAY);
    assert_int_equal(clai_gguf_kv_type(g, clai_gguf_find_key(g, "s.f64")), CLAI_GGUF_FLOAT64);
    assert_null(clai_gguf_key(g, nkv, &len));
    assert_int_equal(len, 0);
    assert_null(clai_gguf_key(g, -1, NULL));
    assert_int_equal(clai_gguf_kv_type(g, nkv), -1);
    assert_int_equal(clai_gguf_find_key(g, "general.architectur"), -1);
    assert_int_equal(clai_gguf_find_key(g, NULL), -1);
    if (cases[c].alignment != 0) {
      int64_t a;
      assert_int_equal(clai_gguf_get_int(g, "general.alignment", &a), CLAI_OK);
      assert_int_equal(a, cases[c].alignment);
    }
    check_scalars(g);
    check_arrays(g);
    size_t size;
    unsigned char *file = slurp(path, &size);
    check_directory(g, file, size, align);
    free(file);
    /* the message of one object's failure is not another's */
    clai_gguf *g2 = open_ok(path);
    assert_string_equal(clai_gguf_errmsg(g2), "");
    assert_true(clai_gguf_errmsg(g)[0] != '\0');
    clai_gguf_close(g2);
    clai_gguf_close(g);
    clait_gguf_free(w);
  }
  assert_int_equal(clai_gguf_version(NULL), 0);
  assert_int_equal(clai_gguf_kv_count(NULL), -1);
  assert_int_equal(clai_gguf_tensor_count(NULL), -1);
  clai_gguf_close(NULL);
  /* a file with nothing in it but the header */
  clait_gguf *w = clait_gguf_new(3);
  char path[1100];
  tmp_path(path, sizeof path, "empty.gguf");
  assert_int_equal(clait_gguf_write(w, path), 0);
  clai_gguf *g = open_ok(path);
  assert_int_equal(clai_gguf_kv_count(g), 0);
  assert_int_equal(clai_gguf_tensor_count(g), 0);
  assert_int_equal(clai_gguf_find_key(g, "x"), -1);
  clai_gguf_close(g);
  clait_gguf_free(w);
}

/* ---- loading into device tensors ------------------------------------------------------------------------ */

/* The quantized tensor t (a load of SPECS[k]) dequantized by clai_copy against the writer's dequantizer of
 * the file's blocks (which follows clai.h's layouts: the same values but for rounding) and against the
 * floats it was quantized from (within the format's step: the writer's quantizer is fit for model tests). */
static void check_dequant(clai_context *ctx, clai_tensor *t, int k) {
  const tensor_spec *sp = &SPECS[k];
  const int64_t n = spec_numel(sp);
  clai_tensor *f = clait_tensor(ctx, CLAI_DTYPE_F32, sp->ndim, sp->shape);
  CLAIT_OK(ctx, clai_copy(ctx, f, t));
  float *got = clait_get(ctx, f), *ref = malloc((size_t)n * sizeof *ref), *orig = spec_floats(k);
  assert_non_null(ref);
  size_t bytes;
  unsigned char *blocks = spec_data(k, &bytes);
  clait_gguf_dequantize(sp->type, blocks, n, ref);
  /* one quantization step: Q8_0 max|x| / 127, Q4_0 max|x| / 8, Q4_1 (max - min) / 15; |x| < 3 here. Values
   * round to the nearest step, but for Q4_0, whose 16 levels run from -8 d to 7 d: with the largest
   * magnitude on -8 d, a value near the other end may be clamped a whole step short. */
  const double step = sp->type == CLAIT_GGML_Q8_0 ? 3.0 / 127 : sp->type == CLAIT_GGML_Q4_0 ? 3.0 / 8 : 6.0 / 15;
  const double off = sp->type == CLAIT_GGML_Q4_0 ? step : 0.5 * step;
  for (int64_t i = 0; i < n; i++) {
    if (fabsf(got[i] - ref[i]) > 1e-6f * (1.0f + fabsf(ref[i])))
      fail_msg("%s element %lld: clai_copy gives %.9g, the writer's dequantizer %.9g", sp->name, (long long)i,
               got[i], ref[i]);
    if (fabs((double)ref[i] - orig[i]) > off * 1.01 + 1e-3)
      fail_msg("%s element %lld: quantized %.9g from %.9g, more than %.4g off", sp->name, (long long)i, ref[i],
               orig[i], off);
  }
  free(blocks);
  free(orig);
  free(ref);
  free(got);
  clai_tensor_free(f);
}

static void test_load(void **state) {
  (void)state;
  if (!have_device()) {
    print_message("# skipped: no OpenCL device\n");
    return;
  }
  clai_context *ctx = clait_ctx();
  clait_gguf *w = values_file(3, 0);
  char path[1100];
  tmp_path(path, sizeof path, "load.gguf");
  assert_int_equal(clait_gguf_write(w, path), 0);
  clai_gguf *g = open_ok(path);
  int loaded = 0;
  for (size_t k = 0; k < NSPECS; k++) {
    const tensor_spec *sp = &SPECS[k];
    clai_tensor *t = (clai_tensor *)(uintptr_t)1;
    if (sp->dtype < 0) {
      CLAIT_FAILS(ctx, CLAI_E_DTYPE, clai_gguf_ggml_type_name(sp->type), clai_gguf_tensor_load(ctx, g, sp->name, &t));
      assert_null(t);
      continue;
    }
    CLAIT_OK(ctx, clai_gguf_tensor_load(ctx, g, sp->name, &t));
    assert_int_equal(clai_tensor_dtype(t), sp->dtype);
    assert_int_equal(clai_tensor_ndim(t), sp->ndim);
    for (int d = 0; d < sp->ndim; d++) assert_int_equal(clai_tensor_dim(t, d), sp->shape[d]);
    size_t bytes;
    unsigned char *want = spec_data((int)k, &bytes);
    unsigned char *got = malloc(bytes + 1);
    assert_non_null(got);
    CLAIT_OK(ctx, clai_tensor_read(t, got, bytes));
    if (bytes > 0) assert_memory_equal(got, want, bytes); /* bit-exact, quantized blocks included */
    free(got);
    free(want);
    /* (the K-quants' bytes are random: test-quant checks their values) */
    if (clai_dtype_block((clai_dtype)sp->dtype) > 1 && spec_from_floats(sp)) check_dequant(ctx, t, (int)k);
    clai_tensor_free(t);
    loaded++;
  }
  print_message("# loaded %d tensors bit-exact\n", loaded);
  clai_tensor *t = (clai_tensor *)(uintptr_t)1;
  CLAIT_FAILS(ctx, CLAI_E_NOT_FOUND, "no tensor 'w.nope'", clai_gguf_tensor_load(ctx, g, "w.nope", &t));
  assert_null(t);
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "NULL", clai_gguf_tensor_load(ctx, g, NULL, &t));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "NULL", clai_gguf_tensor_load(ctx, NULL, "w.f32", &t));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "out is NULL", clai_gguf_tensor_load(ctx, g, "w.f32", NULL));
  assert_int_equal(clai_gguf_tensor_load(NULL, g, "w.f32", &t), CLAI_E_INVALID_ARG);

  /* load_into a row slice of a larger tensor: w.f32 is [3, 5]; rows 4..6 of a [10, 5] tensor */
  const int64_t big_shape[2] = {10, 5};
  clai_tensor *big = clait_tensor(ctx, CLAI_DTYPE_F32, 2, big_shape), *rows = NULL;
  CLAIT_OK(ctx, clai_fill(ctx, big, 7.0));
  CLAIT_OK(ctx, clai_tensor_slice(big, &rows, 0, 4, 7, 1));
  CLAIT_OK(ctx, clai_gguf_tensor_load_into(ctx, g, "w.f32", rows));
  float all[50];
  CLAIT_OK(ctx, clai_tensor_read(big, all, sizeof all));
  size_t bytes;
  unsigned char *want = spec_data(0, &bytes);
  assert_int_equal(bytes, 60);
  assert_memory_equal(all + 20, want, 60);
  for (int i = 0; i < 50; i++)
    if (i < 20 || i >= 35) assert_true(all[i] == 7.0f);
  /* the same elements into a 1-D [15] view (only the count must match), at offset 35 */
  clai_tensor *flat = NULL;
  const int64_t fshape[1] = {15}, fstride[1] = {1};
  CLAIT_OK(ctx, clai_tensor_view(big, &flat, 1, fshape, fstride, 35));
  CLAIT_OK(ctx, clai_gguf_tensor_load_into(ctx, g, "w.f32", flat));
  CLAIT_OK(ctx, clai_tensor_read(big, all, sizeof all));
  assert_memory_equal(all + 35, want, 60);
  free(want);
  /* refusals leave dst as it was */
  clai_tensor *two = NULL, *cols = NULL, *h = NULL;
  CLAIT_OK(ctx, clai_tensor_slice(big, &two, 0, 0, 2, 1));
  CLAIT_FAILS(ctx, CLAI_E_SHAPE, "has 15 elements", clai_gguf_tensor_load_into(ctx, g, "w.f32", two));
  const int64_t wide_shape[2] = {3, 6};
  clai_tensor *wide = clait_tensor(ctx, CLAI_DTYPE_F32, 2, wide_shape);
  CLAIT_OK(ctx, clai_tensor_slice(wide, &cols, 1, 0, 5, 1));
  CLAIT_FAILS(ctx, CLAI_E_NOT_CONTIGUOUS, "dense", clai_gguf_tensor_load_into(ctx, g, "w.f32", cols));
  const int64_t hshape[2] = {3, 5};
  h = clait_tensor(ctx, CLAI_DTYPE_F16, 2, hshape);
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "dst is f16", clai_gguf_tensor_load_into(ctx, g, "w.f32", h));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "Q5_K (GGUF type 13)", clai_gguf_tensor_load_into(ctx, g, "w.q5_k", h));
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "tensor 'w.q6_k' is q6_k, dst is f16", clai_gguf_tensor_load_into(ctx, g, "w.q6_k", h));
  CLAIT_FAILS(ctx, CLAI_E_NOT_FOUND, "no tensor", clai_gguf_tensor_load_into(ctx, g, "nope", h));
  CLAIT_FAILS(ctx, CLAI_E_INVALID_ARG, "dst is NULL", clai_gguf_tensor_load_into(ctx, g, "w.f32", NULL));
  clai_context *other = clait_ctx();
  clai_tensor *foreign = clait_tensor(other, CLAI_DTYPE_F32, 2, hshape);
  CLAIT_FAILS(ctx, CLAI_E_CONTEXT, "another context", clai_gguf_tensor_load_into(ctx, g, "w.f32", foreign));
  clai_tensor_free(foreign);
  clai_context_free(other);
  CLAIT_OK(ctx, clai_tensor_read(big, all, sizeof all));
  for (int i = 0; i < 20; i++) assert_true(all[i] == 7.0f);
  /* a quantized weight into a block-aligned row slice: w.q8_0 [3, 64] into rows 1..3 of a [5, 64] Q8_0 */
  const int64_t qshape[2] = {5, 64};
  clai_tensor *qbig = clait_tensor(ctx, CLAI_DTYPE_Q8_0, 2, qshape), *qrows = NULL, *q40 = NULL;
  unsigned char qall[5 * 2 * 34], qwas[sizeof qall];
  for (size_t i = 0; i < sizeof qall; i++) qwas[i] = (unsigned char)(i * 7 + 1);
  CLAIT_OK(ctx, clai_tensor_write(qbig, qwas, sizeof qwas));
  CLAIT_OK(ctx, clai_tensor_slice(qbig, &qrows, 0, 1, 4, 1));
  CLAIT_OK(ctx, clai_gguf_tensor_load_into(ctx, g, "w.q8_0", qrows));
  CLAIT_OK(ctx, clai_tensor_read(qbig, qall, sizeof qall));
  want = spec_data(5, &bytes);
  assert_int_equal(bytes, 3 * 68);
  assert_memory_equal(qall, qwas, 68);
  assert_memory_equal(qall + 68, want, bytes);
  assert_memory_equal(qall + 4 * 68, qwas + 4 * 68, 68);
  free(want);
  const int64_t q40shape[1] = {64};
  q40 = clait_tensor(ctx, CLAI_DTYPE_Q4_0, 1, q40shape);
  CLAIT_FAILS(ctx, CLAI_E_DTYPE, "tensor 'w.q8_0' is q8_0, dst is q4_0", clai_gguf_tensor_load_into(ctx, g, "w.q8_0", q40));
  CLAIT_OK(ctx, clai_gguf_tensor_load_into(ctx, g, "w.q4_0", q40)); /* [2, 32] into [64]: the same blocks */
  unsigned char q40got[36];
  CLAIT_OK(ctx, clai_tensor_read(q40, q40got, sizeof q40got));
  want = spec_data(6, &bytes);
  assert_int_equal(bytes, 36);
  assert_memory_equal(q40got, want, 36);
  free(want);
  clai_tensor_free(q40);
  clai_tensor_free(qrows);
  clai_tensor_free(qbig);
  /* a tensor loaded from a file stays valid after the file is closed */
  clai_tensor *kept = NULL;
  CLAIT_OK(ctx, clai_gguf_tensor_load(ctx, g, "w.i32", &kept));
  clai_gguf_close(g);
  int32_t iv[24];
  CLAIT_OK(ctx, clai_tensor_read(kept, iv, sizeof iv));
  want = spec_data(2, &bytes);
  assert_memory_equal(iv, want, sizeof iv);
  free(want);
  clai_tensor_free(kept);
  clai_tensor_free(h);
  clai_tensor_free(cols);
  clai_tensor_free(wide);
  clai_tensor_free(two);
  clai_tensor_free(flat);
  clai_tensor_free(rows);
  clai_tensor_free(big);
  clai_context_free(ctx);
  clait_gguf_free(w);
}

/* ---- malformed files, one field at a time ------------------------------------------------------------------ */

static void test_errors(void **state) {
  (void)state;
  char path[1100], err[1024];
  clai_gguf *g = NULL;
  /* cannot be opened */
  assert_int_equal(clai_gguf_open(&g, "/nonexistent/dir/model.gguf", err, sizeof err), CLAI_E_IO);
  assert_null(g);
  assert_non_null(strstr(err, "/nonexistent/dir/model.gguf: cannot open"));
  assert_int_equal(clai_gguf_open(&g, tmpdir, err, sizeof err), CLAI_E_IO);
  assert_non_null(strstr(err, "not a regular file"));
  assert_int_equal(clai_gguf_open(&g, NULL, err, sizeof err), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_gguf_open(NULL, tmpdir, NULL, 0), CLAI_E_INVALID_ARG);
  assert_int_equal(clai_gguf_open(&g, "/nonexistent", NULL, 0), CLAI_E_IO); /* no errbuf: fine */

  /* a small valid file to damage: one kv of each shape, two tensors */
  clait_gguf *w = clait_gguf_new(3);
  clait_gguf_str(w, "general.architecture", "llama");
  clait_gguf_u32(w, "general.alignment", 32);
  clait_gguf_bool(w, "flag", 1);
  const char *toks[2] = {"a", "bc"};
  clait_gguf_arr_str(w, "tokens", 2, toks);
  const uint32_t nums[3] = {1, 2, 3};
  clait_gguf_arr(w, "nums", CLAI_GGUF_UINT32, 3, nums);
  const float f[64] = {1.0f};
  const int64_t s1[2] = {2, 8}, s2[2] = {2, 32};
  clait_gguf_tensor_f32(w, "first", 2, s1, f);
  clait_gguf_tensor_quant(w, "blk.0.attn_q.weight", CLAIT_GGML_Q8_0, 2, s2, f);
  size_t n;
  unsigned char *good = clait_gguf_build(w, &n), *p = malloc(n + 70016);
  assert_non_null(p);
  tmp_path(path, sizeof path, "good.gguf");
  write_bytes(path, good, n);
  clai_gguf_close(open_ok(path));
#define RESET() memcpy(p, good, n)

  RESET();
  REFUSED(p, 0, "the file is empty");
  RESET();
  memcpy(p, "GGML", 4);
  REFUSED(p, n, "not a GGUF file", "'GGML'");
  RESET();
  REFUSED(p, 3, "not a GGUF file");
  RESET();
  patch(p, field(w, "version", 0), 1);
  REFUSED(p, n, "version 1", "not supported");
  RESET();
  patch(p, field(w, "version", 0), 4);
  REFUSED(p, n, "version 4 is not supported");
  RESET();
  patch(p, field(w, "version", 0), 0x03000000u);
  REFUSED(p, n, "big-endian");
  RESET();
  REFUSED(p, 12, "header", "the tensor count at offset 8 needs 8 bytes");
  RESET();
  patch(p, field(w, "kv count", 0), UINT64_MAX);
  REFUSED(p, n, "the kv count at offset 16 is 18446744073709551615");
  RESET();
  patch(p, field(w, "tensor count", 0), 1ULL << 63);
  REFUSED(p, n, "the tensor count at offset 8 is 9223372036854775808");
  RESET();
  patch(p, field(w, "tensor count", 0), 3); /* one more than there are: the third info runs off */
  REFUSED(p, n, "tensor 2");
  RESET();
  patch(p, field(w, "string length", 0), n); /* the first key's length: the file size */
  REFUSED(p, n, "kv 0", "the key at offset 24 has length");
  RESET();
  patch(p, field(w, "string length", 1), UINT64_MAX - 3); /* general.architecture's value */
  REFUSED(p, n, "kv 0 'general.architecture'", "the string at offset");
  RESET();
  patch(p, field(w, "value type", 1), 13);
  REFUSED(p, n, "kv 1 'general.alignment'", "value type at offset", "is 13, not a GGUF type");
  RESET();
  p[field(w, "value type", 2)->at + 4] = 2; /* flag = 2 */
  REFUSED(p, n, "kv 2 'flag'", "neither 0 nor 1");
  RESET();
  patch(p, field(w, "array element type", 0), 13);
  REFUSED(p, n, "kv 3 'tokens'", "element type", "is 13");
  RESET();
  patch(p, field(w, "array count", 0), 1ULL << 62);
  REFUSED(p, n, "kv 3 'tokens'", "the count of the array of string", "is 4611686018427387904");
  RESET();
  patch(p, field(w, "string length", 6), 1ULL << 40); /* "bc", the second token */
  REFUSED(p, n, "kv 3 'tokens'", "string 1 of the array at offset", "has length 1099511627776");
  RESET();
  patch(p, field(w, "array count", 1), n + 1);
  REFUSED(p, n, "kv 4 'nums'", "the count of the array of uint32");
  RESET();
  patch(p, field(w, "array count", 1), 4); /* one uint32 more: eats into the tensor infos */
  REFUSED(p, n, "tensor");
  /* alignment */
  static const uint64_t bad_align[] = {0, 3, 48};
  for (int i = 0; i < 3; i++) {
    RESET();
    p[field(w, "value type", 1)->at + 4] = (unsigned char)bad_align[i];
    REFUSED(p, n, "'general.alignment'", "not a power of two");
  }
  RESET();
  patch(p, field(w, "value type", 1), CLAI_GGUF_INT32);
  REFUSED(p, n, "'general.alignment'", "is int32, not uint32");
  /* tensor infos */
  RESET();
  patch(p, field(w, "n_dims", 0), 0);
  REFUSED(p, n, "tensor 0 'first'", "n_dims at offset", "is 0, not 1 to 4");
  RESET();
  patch(p, field(w, "n_dims", 1), 5);
  REFUSED(p, n, "tensor 1 'blk.0.attn_q.weight'", "is 5, not 1 to 4");
  RESET();
  patch(p, field(w, "ne", 1), 1ULL << 63);
  REFUSED(p, n, "tensor 0 'first'", "ne[1] at offset", "beyond INT64_MAX");
  RESET();
  patch(p, field(w, "ne", 0), 1ULL << 32);
  patch(p, field(w, "ne", 1), 1ULL << 32);
  REFUSED(p, n, "tensor 0 'first'", "element count", "overflows");
  RESET();
  patch(p, field(w, "ne", 2), 33);
  REFUSED(p, n, "tensor 1 'blk.0.attn_q.weight'", "ne[0] is 33, not a multiple of Q8_0's block of 32 values");
  static const uint32_t bad_types[] = {4, 5, 16, 23, 29, 31, 99, UINT32_MAX};
  for (int i = 0; i < 8; i++) {
    RESET();
    patch(p, field(w, "ggml type", 1), bad_types[i]);
    char want[64];
    snprintf(want, sizeof want, "is %u, which is not a ggml type", bad_types[i]);
    REFUSED(p, n, "tensor 1 'blk.0.attn_q.weight'", want);
  }
  RESET();
  patch(p, field(w, "tensor offset", 1), 65);
  REFUSED(p, n, "tensor 1 'blk.0.attn_q.weight'", "is 65, not a multiple of the alignment 32");
  RESET();
  patch(p, field(w, "tensor offset", 1), 1ULL << 62);
  REFUSED(p, n, "tensor 1 'blk.0.attn_q.weight'", "lies past the end of the file");
  RESET();
  char want[160];
  snprintf(want, sizeof want, "tensor 1 'blk.0.attn_q.weight': data [%zu, %zu) runs past the end of the file (%zu bytes)",
           n - 68, n, n - 1);
  REFUSED(p, n - 1, want);
  /* duplicates, nesting, long keys: files built for the purpose */
  clait_gguf *d = clait_gguf_new(2);
  clait_gguf_u32(d, "k", 1);
  clait_gguf_str(d, "other", "x");
  clait_gguf_u32(d, "k", 2);
  unsigned char *q = clait_gguf_build(d, &n);
  REFUSED(q, n, "kv 2 'k'", "the key at offset", "repeats that of kv 0");
  free(q);
  clait_gguf_free(d);
  d = clait_gguf_new(3);
  clait_gguf_tensor_f32(d, "t", 1, (const int64_t[]){4}, f);
  clait_gguf_tensor_f32(d, "u", 1, (const int64_t[]){4}, f);
  clait_gguf_tensor_f32(d, "t", 1, (const int64_t[]){4}, f);
  q = clait_gguf_build(d, &n);
  REFUSED(q, n, "tensor 2 't'", "repeats that of tensor 0");
  free(q);
  clait_gguf_free(d);
  for (int depth = 8; depth <= 9; depth++) {
    d = clait_gguf_new(3);
    clait_gguf_key(d, "deep", CLAI_GGUF_ARRAY);
    for (int i = 1; i < depth; i++) clait_gguf_put_arr(d, CLAI_GGUF_ARRAY, 1);
    clait_gguf_put_arr(d, CLAI_GGUF_UINT8, 1);
    clait_gguf_put_u8(d, 1);
    q = clait_gguf_build(d, &n);
    if (depth == 8) {
      write_bytes(path, q, n);
      g = open_ok(path);
      int et;
      int64_t len;
      assert_int_equal(clai_gguf_get_array(g, "deep", &et, &len), CLAI_OK);
      assert_int_equal(et, CLAI_GGUF_ARRAY);
      clai_gguf_close(g);
    } else {
      REFUSED(q, n, "kv 0 'deep'", "nested more than 8 deep");
    }
    free(q);
    clait_gguf_free(d);
  }
  d = clait_gguf_new(3);
  char *longkey = malloc(65537);
  assert_non_null(longkey);
  memset(longkey, 'k', 65536);
  longkey[65536] = '\0';
  clait_gguf_u8(d, longkey, 1);
  q = clait_gguf_build(d, &n);
  REFUSED(q, n, "kv 0", "is 65536 bytes long (at most 65535)");
  free(q);
  clait_gguf_free(d);
  d = clait_gguf_new(3);
  longkey[65535] = '\0';
  clait_gguf_u8(d, longkey, 1);
  clait_gguf_tensor_f32(d, "\x01name\"", 1, (const int64_t[]){4}, f);
  q = clait_gguf_build(d, &n);
  write_bytes(path, q, n);
  g = open_ok(path);
  assert_int_equal(clai_gguf_find_key(g, longkey), 0);
  clai_gguf_close(g);
  REFUSED(q, n - 1, /* the tensor's name is shown escaped in messages */ "tensor 0 '\\x01name\"'");
  free(q);
  free(longkey);
  clait_gguf_free(d);
  /* an empty errbuf capacity is respected */
  tmp_path(path, sizeof path, "bad.gguf");
  err[0] = 'x';
  assert_int_equal(clai_gguf_open(&g, path, err, 0), CLAI_E_FORMAT);
  assert_int_equal(err[0], 'x');
  free(p);
  free(good);
  clait_gguf_free(w);
#undef RESET
}

/* ---- the mutation fuzz ---------------------------------------------------------------------------------- */

typedef struct fuzz_stats {
  long files, opened, tensors_loaded;
} fuzz_stats;

static void in_file(const unsigned char *base, size_t size, const void *p, uint64_t len, const char *what) {
  const unsigned char *c = p;
  if (c < base || c > base + size || len > (uint64_t)(base + size - c))
    fail_msg("%s [%p, +%llu) is outside the file [%p, +%zu)", what, p, (unsigned long long)len, (const void *)base, size);
}

/* Every accessor on every key and tensor of an opened file (file: its bytes, size of them). */
static void exercise(clai_context *ctx, const clai_gguf *g, const unsigned char *file, size_t size, fuzz_stats *fs) {
  const int64_t nkv = clai_gguf_kv_count(g), nt = clai_gguf_tensor_count(g);
  assert_true(nkv >= 0 && nt >= 0);
  const uint64_t align = clai_gguf_alignment(g);
  assert_true(align > 0 && (align & (align - 1)) == 0);
  /* the first key (or tensor name) is at offset 32: the mapping's start follows */
  const unsigned char *base = NULL;
  if (nkv > 0) base = (const unsigned char *)clai_gguf_key(g, 0, NULL) - 32;
  else if (nt > 0) {
    clai_gguf_tensor_info ti;
    assert_int_equal(clai_gguf_tensor_info_get(g, 0, &ti), CLAI_OK);
    base = (const unsigned char *)ti.name - 32;
  }
  volatile unsigned sink = 0;
  for (int64_t i = 0; i < nkv; i++) {
    size_t klen;
    const char *k = clai_gguf_key(g, i, &klen);
    assert_non_null(k);
    in_file(base, size, k, klen, "a key");
    assert_memory_equal(k, file + ((const unsigned char *)k - base), klen);
    const int type = clai_gguf_kv_type(g, i);
    assert_in_range(type, 0, 12);
    char *key = malloc(klen + 1);
    assert_non_null(key);
    memcpy(key, k, klen);
    key[klen] = '\0';
    const int plain = memchr(k, 0, klen) == NULL;
    if (plain) assert_int_equal(clai_gguf_find_key(g, key), i);
    int64_t v;
    double dv;
    const char *s;
    size_t len;
    int et;
    int64_t an;
    const void *data;
    clai_status st[6];
    st[0] = clai_gguf_get_int(g, key, &v);
    st[1] = clai_gguf_get_float(g, key, &dv);
    st[2] = clai_gguf_get_string(g, key, &s, &len);
    if (st[2] == CLAI_OK) {
      in_file(base, size, s, len, "a string");
      for (size_t b = 0; b < len; b++) sink += (unsigned char)s[b];
    }
    st[3] = clai_gguf_get_array(g, key, &et, &an);
    st[4] = clai_gguf_get_array_data(g, key, &data);
    if (st[3] == CLAI_OK) {
      assert_in_range(et, 0, 12);
      assert_true(an >= 0 && (uint64_t)an <= size);
      static const int es[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
      if (st[4] == CLAI_OK) {
        assert_true(es[et] > 0);
        in_file(base, size, data, (uint64_t)an * (uint64_t)es[et], "array data");
        for (int64_t b = 0; b < an * es[et]; b++) sink += ((const unsigned char *)data)[b];
      }
      if (et == CLAI_GGUF_STRING) {
        for (int64_t j = 0; j < an; j++) {
          assert_int_equal(clai_gguf_get_array_string(g, key, j, &s, &len), CLAI_OK);
          in_file(base, size, s, len, "an array string");
          if (len > 0) sink += (unsigned char)s[0] + (unsigned char)s[len - 1];
        }
        assert_int_equal(clai_gguf_get_array_string(g, key, an, &s, &len), CLAI_E_INVALID_ARG);
        assert_int_equal(clai_gguf_get_array_string(g, key, -1, &s, &len), CLAI_E_INVALID_ARG);
      } else {
        assert_int_equal(clai_gguf_get_array_string(g, key, 0, &s, &len), CLAI_E_DTYPE);
      }
    }
    st[5] = clai_gguf_get_array_string(g, key, 0, &s, &len);
    for (int c = 0; c < 6; c++) {
      if (st[c] == CLAI_OK) continue;
      if (!(st[c] == CLAI_E_DTYPE || st[c] == CLAI_E_OVERFLOW || st[c] == CLAI_E_INVALID_ARG ||
            (st[c] == CLAI_E_NOT_FOUND && !plain)))
        fail_msg("accessor %d on kv %lld: %s (%s)", c, (long long)i, clai_status_name(st[c]), clai_gguf_errmsg(g));
      assert_true(clai_gguf_errmsg(g)[0] != '\0');
    }
    free(key);
  }
  for (int64_t i = 0; i < nt; i++) {
    clai_gguf_tensor_info ti;
    assert_int_equal(clai_gguf_tensor_info_get(g, i, &ti), CLAI_OK);
    in_file(base, size, ti.name, ti.name_len, "a tensor name");
    assert_in_range(ti.ndim, 1, 4);
    int64_t numel = 1;
    for (int d = 0; d < ti.ndim; d++) {
      assert_true(ti.shape[d] >= 0);
      numel *= ti.shape[d];
    }
    int64_t blk, bb;
    clait_ggml_block(ti.ggml_type, &blk, &bb);
    assert_true(blk > 0);
    assert_int_equal(ti.shape[ti.ndim - 1] % blk, 0);
    assert_int_equal(ti.bytes, (uint64_t)(numel / blk * bb));
    assert_true(ti.offset <= size && ti.bytes <= size - ti.offset);
    assert_int_equal(ti.offset % align, 0);
    char *name = malloc(ti.name_len + 1);
    assert_non_null(name);
    memcpy(name, ti.name, ti.name_len);
    name[ti.name_len] = '\0';
    if (memchr(ti.name, 0, ti.name_len) == NULL) {
      assert_int_equal(clai_gguf_find_tensor(g, name), i);
      if (ctx != NULL && ti.dtype >= 0 && ti.bytes <= (1u << 20)) {
        clai_tensor *t = NULL;
        clai_status st = clai_gguf_tensor_load(ctx, g, name, &t);
        if (st == CLAI_OK) {
          unsigned char *got = malloc((size_t)ti.bytes + 1);
          assert_non_null(got);
          CLAIT_OK(ctx, clai_tensor_read(t, got, (size_t)ti.bytes));
          if (ti.bytes > 0 && memcmp(got, file + ti.offset, (size_t)ti.bytes) != 0)
            fail_msg("tensor %lld '%s' does not hold the file's bytes", (long long)i, name);
          free(got);
          clai_tensor_free(t);
          fs->tensors_loaded++;
        } else {
          fail_msg("loading tensor %lld '%s': %s: %s", (long long)i, name, clai_status_name(st), clai_errmsg(ctx));
        }
      }
    }
    free(name);
  }
  (void)sink;
}

/* Writes the bytes, opens them: either a clean refusal or a file whose every accessor works. */
static void fuzz_one(clai_context *ctx, const char *path, const unsigned char *p, size_t n, fuzz_stats *fs) {
  write_bytes(path, p, n);
  char err[1024];
  err[0] = '\0';
  clai_gguf *g = NULL;
  clai_status st = clai_gguf_open(&g, path, err, sizeof err);
  fs->files++;
  if (st != CLAI_OK) {
    assert_null(g);
    if (st != CLAI_E_FORMAT && st != CLAI_E_IO) fail_msg("open: %s: %s", clai_status_name(st), err);
    if (err[0] == '\0') fail_msg("open: %s with an empty message", clai_status_name(st));
    return;
  }
  fs->opened++;
  exercise(ctx, g, p, n, fs);
  clai_gguf_close(g);
}

static int fuzz_iters(void) {
  const char *s = getenv("CLAI_TEST_FUZZ_ITERS");
  if (s != NULL && atoi(s) > 0) return atoi(s);
  return clait_small() ? FUZZ_ITERS / 5 : FUZZ_ITERS;
}

/* The base files: values_file in v3 and v2 with an alignment; a tokenizer-like file; one with nested
 * arrays and no tensors; one with tensors and no kvs. */
static clait_gguf *fuzz_base(int which) {
  if (which == 0) return values_file(3, 0);
  if (which == 1) return values_file(2, 64);
  clait_gguf *w = clait_gguf_new(3);
  const float f[96] = {0.5f, -1.0f, 2.0f};
  if (which == 2) {
    const char *toks[6] = {"<s>", "</s>", "\xc4\xa0the", "a", "", "zz"};
    const float scores[6] = {0, 0, -1, -2, -3, -4};
    const int32_t ttype[6] = {3, 3, 1, 1, 1, 1};
    clait_gguf_str(w, "tokenizer.ggml.model", "gpt2");
    clait_gguf_arr_str(w, "tokenizer.ggml.tokens", 6, toks);
    clait_gguf_arr(w, "tokenizer.ggml.scores", CLAI_GGUF_FLOAT32, 6, scores);
    clait_gguf_arr(w, "tokenizer.ggml.token_type", CLAI_GGUF_INT32, 6, ttype);
    clait_gguf_arr_str(w, "tokenizer.ggml.merges", 2, (const char *const[]){"\xc4\xa0 t", "h e"});
    clait_gguf_tensor_f32(w, "token_embd.weight", 2, (const int64_t[]){6, 4}, f);
    clait_gguf_tensor_quant(w, "blk.0.ffn_up.weight", CLAIT_GGML_Q4_1, 2, (const int64_t[]){3, 32}, f);
  } else if (which == 3) {
    clait_gguf_key(w, "nested", CLAI_GGUF_ARRAY);
    clait_gguf_put_arr(w, CLAI_GGUF_ARRAY, 2);
    clait_gguf_put_arr(w, CLAI_GGUF_STRING, 2);
    clait_gguf_put_str(w, "ab");
    clait_gguf_put_str(w, "");
    clait_gguf_put_arr(w, CLAI_GGUF_ARRAY, 1);
    clait_gguf_put_arr(w, CLAI_GGUF_BOOL, 2);
    clait_gguf_put_u8(w, 1);
    clait_gguf_put_u8(w, 0);
    clait_gguf_f64(w, "x", 1.0);
    clait_gguf_bool(w, "b", 1);
  } else {
    clait_gguf_tensor_quant(w, "a", CLAIT_GGML_F16, 1, (const int64_t[]){9}, f);
    clait_gguf_tensor_quant(w, "b", CLAIT_GGML_Q8_0, 1, (const int64_t[]){32}, f);
    const int32_t iv[3] = {1, -2, 3};
    clait_gguf_tensor(w, "c", CLAIT_GGML_I32, 1, (const int64_t[]){3}, iv, sizeof iv);
  }
  return w;
}

static void test_fuzz(void **state) {
  (void)state;
  clai_context *ctx = have_device() ? clait_ctx() : NULL;
  const int iters = fuzz_iters();
  fuzz_stats fs = {0, 0, 0};
  char path[1100];
  tmp_path(path, sizeof path, "fuzz.gguf");
  const double t0 = (double)clock() / CLOCKS_PER_SEC;
  for (int which = 0; which < 5; which++) {
    clait_gguf *w = fuzz_base(which);
    size_t n;
    unsigned char *good = clait_gguf_build(w, &n), *p = malloc(n + 64);
    assert_non_null(p);
    const long before = fs.opened;
    fuzz_one(ctx, path, good, n, &fs);
    assert_int_equal(fs.opened, before + 1); /* the base itself is valid */
    /* every truncation of the header, and a few of the data */
    const size_t header = w->data_at + 1 < n ? w->data_at + 1 : n;
    const size_t step = clait_small() ? 7 : 1;
    for (size_t cut = 0; cut < header; cut += step) fuzz_one(ctx, path, good, cut, &fs);
    for (size_t cut = header; cut < n; cut += (n - header) / 8 + 1) fuzz_one(ctx, path, good, cut, &fs);
    /* every integer field set to values that break naive readers */
    const uint64_t nasty[] = {0, 1, 2, 31, 33, 0x7fffffff, 0xffffffffu, 1ULL << 32, 1ULL << 62, 1ULL << 63,
                              UINT64_MAX, UINT64_MAX - 7, n, n + 1, n - 1, n / 2};
    for (size_t f = 0; f < w->nfields; f++) {
      for (size_t k = 0; k < sizeof nasty / sizeof nasty[0]; k++) {
        if (clait_small() && (f + k) % 4 != 0) continue;
        memcpy(p, good, n);
        patch(p, &w->fields[f], nasty[k]);
        fuzz_one(ctx, path, p, n, &fs);
      }
    }
    /* random damage: clait_mutate's edits, half of them aimed at the integer fields */
    clait_rng rng = {0xfeedULL + (uint64_t)which};
    clait_layout lay;
    for (int it = 0; it < iters; it++) {
      memset(&lay, 0, sizeof lay);
      for (int k = 0; k < 64 && (size_t)k < w->nfields; k++) {
        const clait_gguf_field *fl = &w->fields[clait_next(&rng) % w->nfields];
        lay.fields[lay.nfields] = fl->at, lay.widths[lay.nfields++] = fl->width;
      }
      memcpy(p, good, n);
      size_t len = n;
      clait_mutate(&rng, p, &len, n + 64, it % 2 ? &lay : NULL);
      fuzz_one(ctx, path, p, len, &fs);
    }
    free(p);
    free(good);
    clait_gguf_free(w);
  }
  print_message("# fuzz: %ld files, %ld opened, %ld tensors loaded and compared%s, %.1f s of CPU\n", fs.files,
                fs.opened, fs.tensors_loaded, ctx != NULL ? "" : " (no device: none loaded)",
                (double)clock() / CLOCKS_PER_SEC - t0);
  assert_true(fs.opened > 5);
  clai_context_free(ctx);
}

/* ---- a real model --------------------------------------------------------------------------------------- */

static void expect_int(const clai_gguf *g, const char *key, int64_t want) {
  int64_t v = -1;
  if (clai_gguf_get_int(g, key, &v) != CLAI_OK) fail_msg("%s: %s", key, clai_gguf_errmsg(g));
  print_message("# %s = %lld\n", key, (long long)v);
  if (v != want) fail_msg("%s is %lld, expected %lld", key, (long long)v, (long long)want);
}

static void test_real_model(void **state) {
  (void)state;
  const char *path = getenv("CLAI_LLM_MODEL");
  if (path == NULL || *path == '\0') {
    print_message("# skipped: CLAI_LLM_MODEL not set\n");
    return;
  }
  clai_gguf *g = open_ok(path);
  const char *s;
  size_t len;
  print_message("# %s: GGUF version %u, alignment %llu, %lld keys, %lld tensors\n", path, clai_gguf_version(g),
                (unsigned long long)clai_gguf_alignment(g), (long long)clai_gguf_kv_count(g),
                (long long)clai_gguf_tensor_count(g));
  assert_int_equal(clai_gguf_get_string(g, "general.architecture", &s, &len), CLAI_OK);
  print_message("# general.architecture = %.*s\n", (int)len, s);
  assert_true(len == 5 && memcmp(s, "llama", 5) == 0);
  expect_int(g, "llama.block_count", 30);
  expect_int(g, "llama.embedding_length", 576);
  expect_int(g, "llama.feed_forward_length", 1536);
  expect_int(g, "llama.attention.head_count", 9);
  expect_int(g, "llama.attention.head_count_kv", 3);
  int et;
  int64_t n;
  assert_int_equal(clai_gguf_get_array(g, "tokenizer.ggml.tokens", &et, &n), CLAI_OK);
  print_message("# tokenizer.ggml.tokens: %lld strings\n", (long long)n);
  assert_int_equal(et, CLAI_GGUF_STRING);
  assert_int_equal(n, 49152);
  assert_int_equal(clai_gguf_get_array_string(g, "tokenizer.ggml.tokens", 0, &s, &len), CLAI_OK);
  print_message("# token 0 = %.*s\n", (int)len, s);
  assert_int_equal(clai_gguf_get_array(g, "tokenizer.ggml.merges", &et, &n), CLAI_OK);
  print_message("# tokenizer.ggml.merges: %lld strings\n", (long long)n);
  assert_int_equal(n, 48900);
  for (int64_t j = 0; j < n; j++) assert_int_equal(clai_gguf_get_array_string(g, "tokenizer.ggml.merges", j, &s, &len), CLAI_OK);
  assert_int_equal(clai_gguf_get_string(g, "tokenizer.ggml.model", &s, &len), CLAI_OK);
  assert_true(len == 4 && memcmp(s, "gpt2", 4) == 0);
  const int64_t nt = clai_gguf_tensor_count(g);
  int q41 = 0, q80 = 0, f32 = 0;
  for (int64_t i = 0; i < nt; i++) {
    clai_gguf_tensor_info ti;
    assert_int_equal(clai_gguf_tensor_info_get(g, i, &ti), CLAI_OK);
    q41 += ti.ggml_type == CLAIT_GGML_Q4_1;
    q80 += ti.ggml_type == CLAIT_GGML_Q8_0;
    f32 += ti.ggml_type == CLAIT_GGML_F32;
  }
  print_message("# %lld tensors: %d Q4_1, %d Q8_0, %d F32\n", (long long)nt, q41, q80, f32);
  assert_int_equal(nt, 272);
  assert_int_equal(q41, 210);
  assert_int_equal(q80, 1);
  assert_int_equal(f32, 61);
  clai_gguf_tensor_info ti;
  const int64_t te = clai_gguf_find_tensor(g, "token_embd.weight");
  assert_true(te >= 0);
  assert_int_equal(clai_gguf_tensor_info_get(g, te, &ti), CLAI_OK);
  assert_int_equal(ti.ggml_type, CLAIT_GGML_Q8_0);
  assert_int_equal(ti.dtype, CLAI_DTYPE_Q8_0);
  assert_int_equal(ti.ndim, 2);
  assert_int_equal(ti.shape[0], 49152);
  assert_int_equal(ti.shape[1], 576);
  if (!have_device()) {
    print_message("# no OpenCL device: tensors not loaded\n");
    clai_gguf_close(g);
    return;
  }
  /* every loadable tensor onto the device and back, against the file's bytes */
  clai_context *ctx = clait_ctx();
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  int loaded = 0;
  for (int64_t i = 0; i < nt; i++) {
    assert_int_equal(clai_gguf_tensor_info_get(g, i, &ti), CLAI_OK);
    if (ti.dtype < 0) continue;
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)ti.name_len, ti.name);
    clai_tensor *t = NULL;
    CLAIT_OK(ctx, clai_gguf_tensor_load(ctx, g, name, &t));
    unsigned char *got = malloc((size_t)ti.bytes), *want = malloc((size_t)ti.bytes);
    assert_true(got != NULL && want != NULL);
    CLAIT_OK(ctx, clai_tensor_read(t, got, (size_t)ti.bytes));
    assert_int_equal(fseek(f, (long)ti.offset, SEEK_SET), 0);
    assert_int_equal(fread(want, 1, (size_t)ti.bytes, f), (size_t)ti.bytes);
    if (memcmp(got, want, (size_t)ti.bytes) != 0) fail_msg("tensor %s does not hold the file's bytes", name);
    free(got);
    free(want);
    clai_tensor_free(t);
    loaded++;
  }
  print_message("# loaded %d tensors bit-exact\n", loaded);
  assert_int_equal(loaded, 272);
  fclose(f);
  clai_context_free(ctx);
  clai_gguf_close(g);
}

static int make_tmpdir(void **state) {
  (void)state;
  return clait_mkdtemp(tmpdir, sizeof tmpdir, "gguf");
}

static int remove_tmpdir(void **state) {
  (void)state;
  return clait_rmtree(tmpdir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_values, make_tmpdir),
      CLAIT_TIMED(test_errors),
      CLAIT_TIMED(test_load),
      CLAIT_TIMED(test_fuzz),
      cmocka_unit_test_teardown(test_real_model, remove_tmpdir),
  };
  /* No whole-program skip: the format checks and the fuzz need no device (test_load and the model's
   * tensors pass with a "# skipped" line without one). */
  return CLAIT_MAIN("gguf", tests, 0);
}
