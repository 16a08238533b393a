/* test-fmnist-files.c - the Fashion-MNIST trainer's file readers (examples/fashion-mnist: the checkpoint of
 * checkpoint.c, the gzip'd IDX files of mnist.c) on damaged input: every field of a valid file set to a bad
 * value by hand, then thousands of random mutations of valid files. A mutation may only ever end in a clear
 * error (status -1, a message that starts with the file's name, nothing written) or, when the mutated file
 * is still a valid one, in a success that returns exactly what the file now says; never a crash, a hang or
 * a success on a file that is not valid. The checksum of a checkpoint is recomputed after most mutations
 * and a mutated IDX file is gzip'd afresh (with a new CRC), so the mutations reach the field checks.
 *
 * The mutations come from fixed seeds, so a failure reproduces; CLAI_TEST_FUZZ_ITERS sets how many per
 * reader (default FUZZ_ITERS). End-to-end runs of the trainer on bad checkpoints are in tests/fmnist-data.sh. */
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "checkpoint.h"
#include "mnist.h"
#include "testutil.h"

#define FUZZ_ITERS 3000

static char tmpdir[1024];

static int fuzz_iters(void) {
  const char *s = getenv("CLAI_TEST_FUZZ_ITERS");
  return s != NULL && atoi(s) > 0 ? atoi(s) : FUZZ_ITERS;
}

static void write_file(const char *path, const unsigned char *p, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

static unsigned char *read_file(const char *path, size_t *n) { return clait_read_file(path, n); }

/* ---- the checkpoint ------------------------------------------------------------------------------------ */

/* FNV-1a, 64 bits: the checksum of checkpoint.c, written down again here so the test can forge it. */
static uint64_t fnv1a64(const unsigned char *p, size_t n) {
  uint64_t h = 1469598103934665603ULL; /* sic: checkpoint.c's offset basis (see the commit message) */
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

static void reseal(unsigned char *buf, size_t n) {
  if (n < 8) return;
  uint64_t h = fnv1a64(buf, n - 8);
  memcpy(buf + n - 8, &h, 8);
}

#define NT 4
static const char *const TNAMES[NT] = {"fc1.weight", "fc1.bias", "conv1.weight", "adam.exp_avg"};
static const int TNDIM[NT] = {2, 1, 4, 1};
static const int64_t TSHAPE[NT][4] = {{3, 5}, {3}, {2, 1, 2, 2}, {7}};

typedef struct ckpt_fixture {
  clai_context *ctx;
  clai_tensor *t[NT];
  ckpt_entry e[NT];
  int64_t numel[NT];
  float *base[NT];      /* what the tensors hold before each load */
  ckpt_meta meta;
  ckpt_expect want;
  char path[1100];
  unsigned char *file;  /* the valid checkpoint */
  size_t len;
  size_t data_at[NT];   /* where each tensor's f32 data starts in the file */
  clait_layout lay;     /* the integer fields, for the mutations */
} ckpt_fixture;

static void ckpt_fixture_init(ckpt_fixture *fx) {
  memset(fx, 0, sizeof *fx);
  fx->ctx = clait_ctx();
  clait_rng rng = {0x5eed5eedULL};
  for (int i = 0; i < NT; i++) {
    fx->t[i] = clait_tensor(fx->ctx, CLAI_DTYPE_F32, TNDIM[i], TSHAPE[i]);
    fx->numel[i] = clai_tensor_numel(fx->t[i]);
    fx->base[i] = malloc((size_t)fx->numel[i] * sizeof(float));
    assert_non_null(fx->base[i]);
    clait_fill(&rng, fx->base[i], (size_t)fx->numel[i], -2.0f, 2.0f);
    CLAIT_OK(fx->ctx, clai_tensor_write(fx->t[i], fx->base[i], (size_t)fx->numel[i] * sizeof(float)));
    fx->e[i].name = TNAMES[i];
    fx->e[i].t = fx->t[i];
  }
  snprintf(fx->meta.model, sizeof fx->meta.model, "mlp");
  fx->meta.seed = 42, fx->meta.epoch = 3, fx->meta.step = 3 * 7, fx->meta.batch = 16;
  fx->want.model = "mlp", fx->want.seed = 42, fx->want.batch = 16, fx->want.max_epoch = 100000;
  fx->want.steps_per_epoch = 7;
  snprintf(fx->path, sizeof fx->path, "%s/fuzz.ckpt", tmpdir);
  char err[1024];
  if (ckpt_save(fx->ctx, fx->path, &fx->meta, fx->e, NT, err, sizeof err) != 0) fail_msg("ckpt_save: %s", err);
  fx->file = read_file(fx->path, &fx->len);
  /* The layout of checkpoint.c: magic 8, model 16, seed/epoch/step/batch 8 each, count 4, then per tensor
   * name length 4, name, ndim 4, shape 8 * ndim, data; checksum 8. */
  clait_layout *l = &fx->lay;
  static const size_t meta_at[] = {24, 32, 40, 48};
  for (int i = 0; i < 4; i++) l->fields[l->nfields] = meta_at[i], l->widths[l->nfields++] = 8;
  l->fields[l->nfields] = 56, l->widths[l->nfields++] = 4;
  size_t at = 60;
  for (int i = 0; i < NT; i++) {
    l->fields[l->nfields] = at, l->widths[l->nfields++] = 4;
    at += 4 + strlen(TNAMES[i]);
    l->fields[l->nfields] = at, l->widths[l->nfields++] = 4;
    at += 4;
    for (int d = 0; d < TNDIM[i]; d++, at += 8) l->fields[l->nfields] = at, l->widths[l->nfields++] = 8;
    fx->data_at[i] = at;
    l->fields[l->nfields] = at, l->widths[l->nfields++] = 4; /* the first float */
    at += 4 * (size_t)fx->numel[i];
  }
  assert_int_equal(at + 8, fx->len);
}

static void ckpt_fixture_free(ckpt_fixture *fx) {
  for (int i = 0; i < NT; i++) {
    clai_tensor_free(fx->t[i]);
    free(fx->base[i]);
  }
  free(fx->file);
  clai_context_free(fx->ctx);
}

/* The tensors hold base (check 1) and are then reset to it (after a load that wrote them). */
static void expect_tensors(ckpt_fixture *fx, const unsigned char *file, const char *what) {
  for (int i = 0; i < NT; i++) {
    float got[16];
    assert_true(fx->numel[i] <= 16);
    CLAIT_OK(fx->ctx, clai_tensor_read(fx->t[i], got, (size_t)fx->numel[i] * sizeof(float)));
    const void *want = file != NULL ? (const void *)(file + fx->data_at[i]) : (const void *)fx->base[i];
    if (memcmp(got, want, (size_t)fx->numel[i] * sizeof(float)) != 0)
      fail_msg("%s: tensor %s does not hold what it should", what, TNAMES[i]);
  }
}

static void reset_tensors(ckpt_fixture *fx) {
  for (int i = 0; i < NT; i++)
    CLAIT_OK(fx->ctx, clai_tensor_write(fx->t[i], fx->base[i], (size_t)fx->numel[i] * sizeof(float)));
}

/* Loads buf (n bytes) as the checkpoint; on failure checks the message, that *m was not written and, with
 * check_tensors (a device round trip per tensor, so not after every mutation), that no tensor was. */
static int load_bytes(ckpt_fixture *fx, const unsigned char *buf, size_t n, ckpt_meta *m, char *err, size_t errsize,
                      int check_tensors) {
  write_file(fx->path, buf, n);
  err[0] = '\0';
  memset(m, 0x5a, sizeof *m);
  int rc = ckpt_load(fx->ctx, fx->path, &fx->want, m, fx->e, NT, err, errsize);
  if (rc != 0) {
    assert_int_equal(rc, -1);
    size_t pl = strlen(fx->path);
    if (strncmp(err, fx->path, pl) != 0 || strncmp(err + pl, ": ", 2) != 0 || err[pl + 2] == '\0')
      fail_msg("the message \"%s\" does not start with the file's name and say what is wrong", err);
    if (check_tensors) expect_tensors(fx, NULL, err);
    ckpt_meta untouched;
    memset(&untouched, 0x5a, sizeof untouched);
    assert_memory_equal(m, &untouched, sizeof *m);
  }
  return rc;
}

typedef struct field_case {
  const char *what;
  size_t at;    /* offset of the value written */
  int width;    /* bytes written there, little-endian */
  uint64_t value;
  const char *needle; /* the message must contain it */
  size_t at2;   /* if not 0, the value is written there too */
} field_case;

/* Every field of the header and of the first tensor's header, each set to a bad value by hand, with the
 * checksum made right again: each is refused with a message that names the field. */
static void test_checkpoint_fields(void **state) {
  (void)state;
  ckpt_fixture fx;
  ckpt_fixture_init(&fx);
  char err[1024];
  ckpt_meta m;
  /* The unchanged file loads, and says what was saved. */
  assert_int_equal(load_bytes(&fx, fx.file, fx.len, &m, err, sizeof err, 1), 0);
  assert_memory_equal(&m, &fx.meta, sizeof m);
  expect_tensors(&fx, fx.file, "the valid file");
  const size_t t0 = 60, nd0 = t0 + 4 + strlen(TNAMES[0]), dim0 = nd0 + 4;
  const float nan = NAN;
  uint32_t nan_bits;
  memcpy(&nan_bits, &nan, 4);
  const field_case cases[] = {
      {"epoch 2^63-1", 32, 8, INT64_MAX, "the epoch field is 9223372036854775807", 0},
      {"epoch -5", 32, 8, (uint64_t)-5, "the epoch field is -5", 0},
      {"epoch past --epochs' limit", 32, 8, 100001, "the epoch field is 100001", 0},
      {"step 2^63-1", 40, 8, INT64_MAX, "the step field", 0},
      {"step -1", 40, 8, UINT64_MAX, "the step field is -1", 0},
      {"step one more than 3 epochs make", 40, 8, 22, "the step field is 22", 0},
      {"batch 0", 48, 8, 0, "the batch field is 0", 0},
      {"batch -1", 48, 8, UINT64_MAX, "the batch field is -1", 0},
      {"another batch", 48, 8, 32, "run with --batch 32", 0},
      {"another seed", 24, 8, 43, "the seed field is 43", 0},
      {"another model", 8, 4, 0x6e6e63, "the model field is 'cnn'", 0},
      {"model without its NUL", 8, 8, 0x4141414141414141ULL, "the model field ('AAAAAAAAAAAAAAAA')", 16},
      {"bytes after the model name", 20, 4, 0x41414141, "the model field ('mlp')", 0},
      {"empty model name", 8, 1, 0, "the model field", 0},
      {"tensor count 0", 56, 4, 0, "the tensor count field is 0", 0},
      {"tensor count 2^32-1", 56, 4, 0xffffffff, "the tensor count field is 4294967295", 0},
      {"tensor count 5", 56, 4, 5, "the tensor count field is 5", 0},
      {"name length 0", t0, 4, 0, "name length field is 0", 0},
      {"name length 2^32-1", t0, 4, 0xffffffff, "name length field is 4294967295", 0},
      {"name length 64", t0, 4, 64, "name length field is 64", 0},
      {"name length 9 of 10", t0, 4, 9, "tensor 0 is named 'fc1.weigh'", 0},
      {"a NUL in the name", t0 + 4 + 9, 1, 0, "tensor 0 is named 'fc1.weigh?'", 0},
      {"ndim 0", nd0, 4, 0, "the ndim field is 0", 0},
      {"ndim 2^32-1", nd0, 4, 0xffffffff, "the ndim field is 4294967295", 0},
      {"shape -1", dim0, 8, UINT64_MAX, "dimension 0 of its shape is -1", 0},
      {"shape 2^63-1", dim0, 8, INT64_MAX, "dimension 0 of its shape is 9223372036854775807", 0},
      {"shape 0", dim0 + 8, 8, 0, "dimension 1 of its shape is 0", 0},
      {"a NaN weight", dim0 + 16 + 8, 4, nan_bits, "element 2 is nan", 0},
      {"an infinite Adam state", fx.data_at[3] + 24, 4, 0xff800000u, "'adam.exp_avg': element 6 is -inf", 0},
      {"the magic", 7, 1, '2', "not a libclai checkpoint", 0},
  };
  unsigned char *buf = malloc(fx.len + 64);
  assert_non_null(buf);
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    memcpy(buf, fx.file, fx.len);
    for (int i = 0; i < cases[c].width; i++) {
      buf[cases[c].at + (size_t)i] = (unsigned char)(cases[c].value >> (8 * i));
      if (cases[c].at2 != 0) buf[cases[c].at2 + (size_t)i] = (unsigned char)(cases[c].value >> (8 * i));
    }
    reseal(buf, fx.len);
    int rc = load_bytes(&fx, buf, fx.len, &m, err, sizeof err, 1);
    if (rc != -1) fail_msg("%s: loaded (rc %d)", cases[c].what, rc);
    if (strstr(err, cases[c].needle) == NULL)
      fail_msg("%s: the message \"%s\" does not mention \"%s\"", cases[c].what, err, cases[c].needle);
  }
  /* Lengths: a tensor's data cut short, bytes after the last tensor, a file cut in a header, a shorter
   * file, a checksum left wrong, a missing file. */
  struct {
    const char *what;
    size_t len;
    const char *needle;
  } lens[] = {
      {"data cut short", fx.len - 4, "'adam.exp_avg': the file holds 24 of its 28 data bytes"},
      {"bytes after the last tensor", fx.len + 3, "3 bytes after the last tensor"},
      {"cut inside a tensor header", t0 + 2 + 8, "the file ends inside a tensor's header"},
      {"shorter than a header", 40, "not a libclai checkpoint"},
  };
  for (size_t c = 0; c < sizeof lens / sizeof lens[0]; c++) {
    size_t n = lens[c].len;
    if (n > fx.len) { /* longer: keep everything, add zero bytes before the checksum */
      memcpy(buf, fx.file, fx.len - 8);
      memset(buf + fx.len - 8, 0, n - fx.len);
    } else {
      memcpy(buf, fx.file, n - 8);
    }
    reseal(buf, n);
    int rc = load_bytes(&fx, buf, n, &m, err, sizeof err, 1);
    if (rc != -1 || strstr(err, lens[c].needle) == NULL)
      fail_msg("%s: rc %d, message \"%s\" (wanted \"%s\")", lens[c].what, rc, err, lens[c].needle);
  }
  memcpy(buf, fx.file, fx.len);
  buf[fx.data_at[1]] ^= 1;
  assert_int_equal(load_bytes(&fx, buf, fx.len, &m, err, sizeof err, 1), -1);
  assert_non_null(strstr(err, "checksum mismatch"));
  unlink(fx.path);
  assert_int_equal(ckpt_load(fx.ctx, fx.path, &fx.want, &m, fx.e, NT, err, sizeof err), 1);
  free(buf);
  ckpt_fixture_free(&fx);
}

/* Random mutations of a valid checkpoint, the checksum recomputed after 7 in 8 of them. A load succeeds
 * exactly when only tensor data changed, to finite values, and the checksum is right; it then holds the
 * file's values. Everything else is refused, with nothing written. */
static void test_checkpoint_fuzz(void **state) {
  (void)state;
  ckpt_fixture fx;
  ckpt_fixture_init(&fx);
  const size_t cap = fx.len + 64;
  unsigned char *buf = malloc(cap);
  assert_non_null(buf);
  clait_rng rng = {0xc4ec4b0171ULL};
  const int iters = fuzz_iters();
  int loaded = 0, refused = 0;
  char err[1024];
  for (int it = 0; it < iters; it++) {
    size_t n = fx.len;
    memcpy(buf, fx.file, n);
    clait_mutate(&rng, buf, &n, cap, &fx.lay);
    const int sealed = clait_next(&rng) % 8 != 0;
    if (sealed) reseal(buf, n);
    /* Valid after all? Same length, checksum right, no byte outside the tensors' data different from the
     * original (a deletion and an insertion in the same tensor's data may leave everything else in place),
     * and every value finite. */
    int valid = n == fx.len;
    if (valid) {
      uint64_t h;
      memcpy(&h, buf + n - 8, 8);
      valid = fnv1a64(buf, n - 8) == h;
    }
    for (size_t b = 0; valid && b < n - 8; b++) {
      if (buf[b] == fx.file[b]) continue;
      int in_data = 0;
      for (int i = 0; i < NT; i++)
        if (b >= fx.data_at[i] && b < fx.data_at[i] + 4 * (size_t)fx.numel[i]) in_data = 1;
      valid = in_data;
    }
    for (int i = 0; i < NT && valid; i++)
      for (int64_t k = 0; k < fx.numel[i]; k++) {
        float v;
        memcpy(&v, buf + fx.data_at[i] + 4 * (size_t)k, 4);
        if (!isfinite(v)) valid = 0;
      }
    ckpt_meta m;
    int rc = load_bytes(&fx, buf, n, &m, err, sizeof err, it % 64 == 0);
    if (rc == 0) {
      if (!valid) fail_msg("mutation %d: a damaged checkpoint (%zu bytes) was loaded", it, n);
      assert_memory_equal(&m, &fx.meta, sizeof m);
      char what[64];
      snprintf(what, sizeof what, "mutation %d", it);
      expect_tensors(&fx, buf, what);
      reset_tensors(&fx);
      loaded++;
    } else {
      if (valid) fail_msg("mutation %d: a valid checkpoint was refused: %s", it, err);
      refused++;
    }
  }
  print_message("# %d mutated checkpoints: %d loaded (data only), %d refused\n", iters, loaded, refused);
  assert_true(refused > iters / 2);
  free(buf);
  ckpt_fixture_free(&fx);
}

/* ---- the IDX files ------------------------------------------------------------------------------------- */

#define NIMG 5

static void gz_write(const char *path, const unsigned char *p, size_t n) {
  gzFile f = gzopen(path, "wb1");
  assert_non_null(f);
  if (n > 0) assert_int_equal(gzwrite(f, p, (unsigned)n), (int)n);
  assert_int_equal(gzclose(f), Z_OK);
}

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

typedef struct idx_pair {
  unsigned char *img, *lab; /* the uncompressed IDX bytes */
  size_t nimg, nlab;
} idx_pair;

/* What a correct reader must make of the pair: 1 (and the set) when it is a valid Fashion-MNIST pair,
 * written down from the format, independently of mnist.c; else 0. */
static int idx_valid(const idx_pair *p) {
  if (p->nimg < 16 || p->nlab < 8) return 0;
  if (get_be32(p->img) != 0x803 || get_be32(p->lab) != 0x801) return 0;
  uint32_t n = get_be32(p->img + 4), r = get_be32(p->img + 8), c = get_be32(p->img + 12), nl = get_be32(p->lab + 4);
  if (n == 0 || n != nl || r != 28 || c != 28) return 0;
  if (p->nimg != 16 + (size_t)n * 784 || p->nlab != 8 + (size_t)n) return 0;
  for (uint32_t i = 0; i < n; i++)
    if (p->lab[8 + i] > 9) return 0;
  return 1;
}

static void write_pair(const char *dir, const idx_pair *p) {
  char path[1200];
  snprintf(path, sizeof path, "%s/fz-images-idx3-ubyte.gz", dir);
  gz_write(path, p->img, p->nimg);
  snprintf(path, sizeof path, "%s/fz-labels-idx1-ubyte.gz", dir);
  gz_write(path, p->lab, p->nlab);
}

static void make_pair(idx_pair *p, size_t extra) {
  clait_rng rng = {0x1d81d8ULL};
  p->nimg = 16 + NIMG * 784, p->nlab = 8 + NIMG;
  p->img = malloc(p->nimg + extra);
  p->lab = malloc(p->nlab + extra);
  assert_non_null(p->img);
  assert_non_null(p->lab);
  put_be32(p->img, 0x803), put_be32(p->img + 4, NIMG), put_be32(p->img + 8, 28), put_be32(p->img + 12, 28);
  for (size_t i = 16; i < p->nimg; i++) p->img[i] = (unsigned char)clait_next(&rng);
  put_be32(p->lab, 0x801), put_be32(p->lab + 4, NIMG);
  for (size_t i = 8; i < p->nlab; i++) p->lab[i] = (unsigned char)(clait_next(&rng) % 10);
}

/* Loads the pair in dir; on failure checks the message names one of the files and the set is empty. */
static int load_pair(const char *dir, mnist_set *s, char *err, size_t errsize, const char *what) {
  err[0] = '\0';
  memset(s, 0x5a, sizeof *s);
  int rc = mnist_load(dir, "fz", s, err, errsize);
  if (rc != 0) {
    assert_int_equal(rc, -1);
    if (strstr(err, "/fz-") == NULL)
      fail_msg("%s: the message \"%s\" does not name the file", what, err);
    assert_int_equal(s->n, 0);
    assert_null(s->images);
    assert_null(s->labels);
  }
  return rc;
}

/* Header fields and lengths set to bad values by hand, each refused with a message about it; then random
 * mutations of the uncompressed bytes of either file, gzip'd afresh. A load succeeds exactly when the pair
 * is still a valid one, and then returns its contents. */
static void test_idx_fuzz(void **state) {
  (void)state;
  idx_pair good, p;
  make_pair(&good, 0);
  const size_t cap = good.nimg + 64;
  make_pair(&p, 64);
  char dir[1100], err[8192];
  snprintf(dir, sizeof dir, "%s/idx", tmpdir);
  mkdir(dir, 0700);
  mnist_set s;
  write_pair(dir, &good);
  assert_int_equal(load_pair(dir, &s, err, sizeof err, "the valid pair"), 0);
  assert_int_equal(s.n, NIMG);
  assert_memory_equal(s.images, good.img + 16, NIMG * 784);
  assert_memory_equal(s.labels, good.lab + 8, NIMG);
  mnist_free(&s);

  struct {
    const char *what;
    int labels; /* 0: the images file, 1: the labels file */
    size_t at;  /* where the big-endian u32 value goes (a label: the byte) */
    uint32_t value;
    const char *needle;
  } cases[] = {
      {"image count 0", 0, 4, 0, "dimension 0 is 0"},
      {"image count 2^32-1", 0, 4, 0xffffffff, "dimension 0 is 4294967295"},
      {"image count 10 million", 0, 4, 10000000, "7840000000 bytes"},
      {"image count one more", 0, 4, NIMG + 1, "the header promises"},
      {"image count one less", 0, 4, NIMG - 1, "trailing bytes"},
      {"rows 27", 0, 8, 27, "dimension 1 is 27, expected 28"},
      {"columns 2^31", 0, 12, 0x80000000u, "dimension 2 is 2147483648"},
      {"images magic", 0, 0, 0x801, "IDX magic is 0x00000801, expected 0x00000803"},
      {"labels magic", 1, 0, 0x803, "IDX magic is 0x00000803, expected 0x00000801"},
      {"label count one less", 1, 4, NIMG - 1, "trailing bytes"},
      {"label 10", 1, 8 + 3, 10, "label 3 is 10"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    memcpy(p.img, good.img, good.nimg), memcpy(p.lab, good.lab, good.nlab);
    p.nimg = good.nimg, p.nlab = good.nlab;
    if (cases[c].labels && cases[c].at >= 8) p.lab[cases[c].at] = (unsigned char)cases[c].value;
    else put_be32((cases[c].labels ? p.lab : p.img) + cases[c].at, cases[c].value);
    write_pair(dir, &p);
    if (load_pair(dir, &s, err, sizeof err, cases[c].what) != -1) fail_msg("%s: loaded", cases[c].what);
    if (strstr(err, cases[c].needle) == NULL)
      fail_msg("%s: the message \"%s\" does not mention \"%s\"", cases[c].what, err, cases[c].needle);
  }

  clait_rng rng = {0x1dbf022ULL};
  const int iters = fuzz_iters();
  int loaded = 0, refused = 0;
  clait_layout lay = {{0, 4, 8, 12}, {4, 4, 4, 4}, 4}, llay = {{0, 4, 8}, {4, 4, 1}, 3};
  for (int it = 0; it < iters; it++) {
    memcpy(p.img, good.img, good.nimg), memcpy(p.lab, good.lab, good.nlab);
    p.nimg = good.nimg, p.nlab = good.nlab;
    const int which = (int)(clait_next(&rng) % 2);
    if (which == 0) {
      clait_mutate(&rng, p.img, &p.nimg, cap, &lay);
    } else {
      clait_mutate(&rng, p.lab, &p.nlab, good.nlab + 64, &llay);
    }
    write_pair(dir, &p);
    char what[64];
    snprintf(what, sizeof what, "mutation %d", it);
    const int valid = idx_valid(&p);
    int rc = load_pair(dir, &s, err, sizeof err, what);
    if (rc == 0) {
      if (!valid) fail_msg("%s of the %s file: an invalid pair was loaded", what, which ? "labels" : "images");
      assert_int_equal(s.n, get_be32(p.img + 4));
      assert_memory_equal(s.images, p.img + 16, (size_t)s.n * 784);
      assert_memory_equal(s.labels, p.lab + 8, (size_t)s.n);
      mnist_free(&s);
      loaded++;
    } else {
      if (valid) fail_msg("%s: a valid pair was refused: %s", what, err);
      refused++;
    }
  }
  print_message("# %d mutated IDX pairs: %d loaded (pixels or labels 0..9 changed), %d refused\n", iters, loaded,
                refused);
  assert_true(loaded > 0 && refused > iters / 4);
  free(good.img), free(good.lab), free(p.img), free(p.lab);
}

/* Random mutations of the compressed files as they lie on disk (no CRC recomputed): a refusal with a
 * message, or a success with the original contents (a byte of the gzip header that zlib ignores). */
static void test_gz_fuzz(void **state) {
  (void)state;
  idx_pair good;
  make_pair(&good, 0);
  char dir[1100], path[2][1200], err[8192];
  snprintf(dir, sizeof dir, "%s/gz", tmpdir);
  mkdir(dir, 0700);
  write_pair(dir, &good);
  snprintf(path[0], sizeof path[0], "%s/fz-images-idx3-ubyte.gz", dir);
  snprintf(path[1], sizeof path[1], "%s/fz-labels-idx1-ubyte.gz", dir);
  size_t len[2];
  unsigned char *orig[2] = {read_file(path[0], &len[0]), read_file(path[1], &len[1])};
  const size_t cap = (len[0] > len[1] ? len[0] : len[1]) + 64;
  unsigned char *buf = malloc(cap);
  assert_non_null(buf);
  clait_rng rng = {0x9a1bULL};
  const int iters = fuzz_iters() / 2;
  int loaded = 0, refused = 0;
  for (int it = 0; it < iters; it++) {
    const int which = (int)(clait_next(&rng) % 2);
    size_t n = len[which];
    memcpy(buf, orig[which], n);
    clait_mutate(&rng, buf, &n, cap, NULL);
    write_file(path[which], buf, n);
    char what[64];
    snprintf(what, sizeof what, "gzip mutation %d", it);
    mnist_set s;
    if (load_pair(dir, &s, err, sizeof err, what) == 0) {
      assert_int_equal(s.n, NIMG);
      assert_memory_equal(s.images, good.img + 16, NIMG * 784);
      assert_memory_equal(s.labels, good.lab + 8, NIMG);
      mnist_free(&s);
      loaded++;
    } else {
      refused++;
    }
    write_file(path[which], orig[which], len[which]);
  }
  print_message("# %d mutated .gz files: %d loaded (ignored header bytes), %d refused\n", iters, loaded, refused);
  assert_true(refused > iters / 2);
  free(orig[0]), free(orig[1]), free(buf), free(good.img), free(good.lab);
}

static int make_tmpdir(void **state) {
  (void)state;
  return clait_mkdtemp(tmpdir, sizeof tmpdir, "fmnist-files");
}

static int remove_tmpdir(void **state) {
  (void)state;
  return clait_rmtree(tmpdir);
}

/* `test-fmnist-files forge IN OUT FIELD VALUE`, for tests/fmnist-data.sh: copies the checkpoint IN to OUT
 * with one field (seed, epoch, step, batch, count, or ndim0 / dim0 of the first tensor) set to the decimal
 * VALUE and the checksum made right, so that the trainer's own checks are what refuses it. */
static int forge(const char *in, const char *out, const char *field, const char *value) {
  FILE *f = fopen(in, "rb");
  if (f == NULL) return perror(in), 2;
  fseek(f, 0, SEEK_END);
  const long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  const size_t n = len > 0 ? (size_t)len : 0;
  unsigned char *p = malloc(n + 1);
  if (p == NULL || fread(p, 1, n, f) != n || n < 68) return fprintf(stderr, "forge: cannot read %s\n", in), 2;
  fclose(f);
  uint32_t nl;
  memcpy(&nl, p + 60, 4);
  const struct {
    const char *name;
    size_t at;
    int width;
  } fields[] = {{"seed", 24, 8}, {"epoch", 32, 8}, {"step", 40, 8}, {"batch", 48, 8}, {"count", 56, 4},
                {"ndim0", 64 + (size_t)nl, 4}, {"dim0", 68 + (size_t)nl, 8}};
  int k = -1;
  for (int i = 0; i < 7; i++)
    if (strcmp(fields[i].name, field) == 0) k = i;
  if (k < 0 || fields[k].at + 8 > n - 8) return fprintf(stderr, "forge: no field %s\n", field), 2;
  const int64_t v = strtoll(value, NULL, 10);
  for (int i = 0; i < fields[k].width; i++) p[fields[k].at + (size_t)i] = (unsigned char)((uint64_t)v >> (8 * i));
  reseal(p, n);
  f = fopen(out, "wb");
  if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) return perror(out), 2;
  free(p);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 6 && strcmp(argv[1], "forge") == 0) return forge(argv[2], argv[3], argv[4], argv[5]);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_checkpoint_fields, make_tmpdir),
      CLAIT_TIMED(test_checkpoint_fuzz),
      CLAIT_TIMED(test_idx_fuzz),
      cmocka_unit_test_teardown(test_gz_fuzz, remove_tmpdir),
  };
  return CLAIT_MAIN("fmnist-files", tests, 1);
}
