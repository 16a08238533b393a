/* clai - libclai's command-line tool: `clai devices` lists every OpenCL device, its rank and which one
 * libclai chooses and why; `clai bench gemm` measures matmul (bench.c), `clai bench ops` the other ops
 * (bench-ops.c); `clai tune` tunes matmul (tune.c); `clai train` trains on Fashion-MNIST
 * (examples/fashion-mnist/train.c); `clai gguf FILE` lists a GGUF model file's metadata and tensors;
 * `clai version`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "clai.h"
#include "generate.h"
#include "train.h"

static const char *type_name(clai_device_type t) {
  switch (t) {
  case CLAI_DEVICE_DISCRETE_GPU: return "discrete GPU";
  case CLAI_DEVICE_INTEGRATED_GPU: return "integrated GPU";
  case CLAI_DEVICE_ACCELERATOR: return "accelerator";
  case CLAI_DEVICE_CPU: return "CPU";
  default: return "other";
  }
}

static int cmd_devices(void) {
  char err[4096];
  clai_context *ctx = NULL;
  clai_status st = clai_context_init_ex(&ctx, NULL, err, sizeof err);
  if (st != CLAI_OK) {
    fprintf(stderr, "clai: %s: %s\n", clai_status_name(st), err);
    return 1;
  }
  int n = clai_context_device_count(ctx);
  for (int i = 0; i < n; i++) {
    clai_device_info d;
    if (clai_context_device_info(ctx, i, &d) != CLAI_OK) continue;
    printf("%c %d: %s / %s\n", d.chosen ? '*' : ' ', d.index, d.platform, d.name);
    printf("     type %s, %u compute units at %u MHz, %.1f GiB global memory (max allocation %.1f GiB)\n",
           type_name(d.type), d.compute_units, d.clock_mhz, (double)d.global_mem_bytes / (1 << 30),
           (double)d.max_alloc_bytes / (1 << 30));
    printf("     vendor %s, %s, driver %s, %s, fp16 %s\n", d.vendor, d.device_version, d.driver_version,
           d.opencl_c_version, d.has_fp16 ? "yes" : "no");
    printf("     %s%s\n", d.note, d.fallback ? " (fallback)" : "");
  }
  clai_context_stats s;
  clai_context_stats_get(ctx, &s);
  const char *eager = getenv("CLAI_EAGER");
  const int all = eager != NULL && strcmp(eager, "1") == 0;
  printf("kernels: %u programs, %u built, %u from the cache (%s), start-up %.0f ms (building %.0f ms)%s\n",
         s.programs, s.programs_built, s.programs_cached,
         clai_context_cache_dir(ctx) ? clai_context_cache_dir(ctx) : "cache off", s.init_seconds * 1e3,
         s.build_seconds * 1e3, all ? "" : "; the other op families load on first use (CLAI_EAGER=1: all now)");
  for (int i = 0; i < clai_context_program_count(ctx); i++) {
    clai_program_info p;
    if (clai_context_program_info(ctx, i, &p) != CLAI_OK || p.state == 0) continue;
    printf("     %-20s %-12s %8.0f ms\n", p.name, p.state == 2 ? "from cache" : "built", p.build_seconds * 1e3);
  }
  clai_context_free(ctx);
  return 0;
}

static const char *gguf_type_name(int t) {
  static const char *const names[] = {"uint8", "int8",  "uint16", "int16",  "uint32", "int32", "float32",
                                      "bool",  "string", "array", "uint64", "int64",  "float64"};
  return t >= 0 && t < (int)(sizeof names / sizeof names[0]) ? names[t] : "?";
}

/* A string from the file, quoted, at most max bytes, control characters and quotes escaped. */
static void print_str(const char *s, size_t n, size_t max) {
  putchar('"');
  for (size_t i = 0; i < n && i < max; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
    else putchar(c);
  }
  putchar('"');
  if (n > max) printf("...(%zu bytes)", n);
}

/* One little-endian scalar of GGUF type t at p (a number or bool). */
static void print_scalar(int t, const unsigned char *p) {
  uint64_t u = 0;
  int size = t == CLAI_GGUF_UINT8 || t == CLAI_GGUF_INT8 || t == CLAI_GGUF_BOOL      ? 1
             : t == CLAI_GGUF_UINT16 || t == CLAI_GGUF_INT16                         ? 2
             : t == CLAI_GGUF_UINT32 || t == CLAI_GGUF_INT32 || t == CLAI_GGUF_FLOAT32 ? 4
                                                                                     : 8;
  for (int i = size - 1; i >= 0; i--) u = u << 8 | p[i];
  switch (t) {
  case CLAI_GGUF_INT8: printf("%d", (int8_t)u); break;
  case CLAI_GGUF_INT16: printf("%d", (int16_t)u); break;
  case CLAI_GGUF_INT32: printf("%d", (int32_t)u); break;
  case CLAI_GGUF_INT64: printf("%lld", (long long)(int64_t)u); break;
  case CLAI_GGUF_BOOL: printf("%s", u ? "true" : "false"); break;
  case CLAI_GGUF_FLOAT32: {
    uint32_t x = (uint32_t)u;
    float f;
    memcpy(&f, &x, 4);
    printf("%.9g", f);
    break;
  }
  case CLAI_GGUF_FLOAT64: {
    double d;
    memcpy(&d, &u, 8);
    printf("%.17g", d);
    break;
  }
  default: printf("%llu", (unsigned long long)u); break;
  }
}

static int scalar_bytes(int t) {
  switch (t) {
  case CLAI_GGUF_UINT8: case CLAI_GGUF_INT8: case CLAI_GGUF_BOOL: return 1;
  case CLAI_GGUF_UINT16: case CLAI_GGUF_INT16: return 2;
  case CLAI_GGUF_UINT32: case CLAI_GGUF_INT32: case CLAI_GGUF_FLOAT32: return 4;
  case CLAI_GGUF_UINT64: case CLAI_GGUF_INT64: case CLAI_GGUF_FLOAT64: return 8;
  }
  return 0;
}

/* `clai gguf FILE`: the version, the alignment, every key with its type and value (arrays: the element
 * type, the length and the first elements) and every tensor. */
static int cmd_gguf(int argc, char **argv) {
  if (argc != 1 || argv[0][0] == '-') {
    fprintf(stderr, "usage: clai gguf FILE   list a GGUF file's metadata and tensors\n");
    return argc == 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) ? 0 : 2;
  }
  char err[1024];
  clai_gguf *g = NULL;
  clai_status st = clai_gguf_open(&g, argv[0], err, sizeof err);
  if (st != CLAI_OK) {
    fprintf(stderr, "clai: %s: %s\n", clai_status_name(st), err);
    return 1;
  }
  const int64_t nkv = clai_gguf_kv_count(g), nt = clai_gguf_tensor_count(g);
  printf("%s: GGUF version %u, alignment %llu, %lld keys, %lld tensors\n", argv[0], clai_gguf_version(g),
         (unsigned long long)clai_gguf_alignment(g), (long long)nkv, (long long)nt);
  for (int64_t i = 0; i < nkv; i++) {
    size_t klen;
    const char *k = clai_gguf_key(g, i, &klen);
    char key[512];
    snprintf(key, sizeof key, "%.*s", (int)(klen < 511 ? klen : 511), k);
    const int t = clai_gguf_kv_type(g, i);
    printf("  %-40s ", key);
    if (t == CLAI_GGUF_STRING) {
      const char *s;
      size_t n;
      clai_gguf_get_string(g, key, &s, &n);
      printf("string ");
      print_str(s, n, 200);
    } else if (t == CLAI_GGUF_ARRAY) {
      int et;
      int64_t n;
      clai_gguf_get_array(g, key, &et, &n);
      printf("array of %lld %s [", (long long)n, gguf_type_name(et));
      const int64_t show = n < 8 ? n : 8;
      const void *data = NULL;
      for (int64_t j = 0; j < show; j++) {
        if (j) printf(", ");
        if (et == CLAI_GGUF_STRING) {
          const char *s;
          size_t len;
          clai_gguf_get_array_string(g, key, j, &s, &len);
          print_str(s, len, 40);
        } else if (et == CLAI_GGUF_ARRAY) {
          printf("[...]");
        } else {
          if (data == NULL) clai_gguf_get_array_data(g, key, &data);
          print_scalar(et, (const unsigned char *)data + j * scalar_bytes(et));
        }
      }
      printf("%s]", n > show ? ", ..." : "");
    } else {
      printf("%s ", gguf_type_name(t));
      const int64_t pos = clai_gguf_find_key(g, key);
      /* the key as text may not find a key that holds a NUL byte; print the value only when it does */
      if (pos == i) {
        int64_t v;
        double d;
        if (t == CLAI_GGUF_FLOAT32 || t == CLAI_GGUF_FLOAT64) {
          clai_gguf_get_float(g, key, &d);
          printf("%.9g", d);
        } else if (t == CLAI_GGUF_BOOL) {
          clai_gguf_get_int(g, key, &v);
          printf("%s", v ? "true" : "false");
        } else if (clai_gguf_get_int(g, key, &v) == CLAI_OK) {
          printf("%lld", (long long)v);
        } else {
          clai_gguf_get_float(g, key, &d); /* a uint64 beyond INT64_MAX */
          printf("%.0f", d);
        }
      }
    }
    printf("\n");
  }
  for (int64_t i = 0; i < nt; i++) {
    clai_gguf_tensor_info ti;
    clai_gguf_tensor_info_get(g, i, &ti);
    char shape[256];
    size_t len = 0;
    shape[0] = '\0';
    for (int d = 0; d < ti.ndim; d++)
      len += (size_t)snprintf(shape + len, sizeof shape - len, "%s%lld", d ? ", " : "", (long long)ti.shape[d]);
    printf("  %-40.*s %-5s [%s] at %llu, %llu bytes%s\n", (int)(ti.name_len < 200 ? ti.name_len : 200), ti.name,
           clai_gguf_ggml_type_name(ti.ggml_type), shape, (unsigned long long)ti.offset,
           (unsigned long long)ti.bytes, ti.dtype < 0 ? " (not loadable)" : "");
  }
  clai_gguf_close(g);
  return 0;
}

static void usage(FILE *f) {
  fprintf(f, "usage: clai devices       list OpenCL devices and the one libclai chooses\n"
             "       clai bench gemm    matmul GFLOP/s on the chosen device (clai bench --help)\n"
             "       clai tune          tune the matmul kernels for the chosen device (clai tune --help)\n"
             "       clai bench ops     GB/s of elementwise ops, softmax, layernorm, reductions (--help)\n"
             "       clai train         train a classifier on Fashion-MNIST (clai train --help)\n"
             "       clai bench train   training samples/s of clai train beside PyTorch (--help)\n"
             "       clai gguf FILE     list a GGUF model file's metadata and tensors\n"
             "       clai generate      generate text with a GGUF Llama model (clai generate --help)\n"
             "       clai version       print the library version\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (strcmp(argv[1], "devices") == 0) return cmd_devices();
  if (strcmp(argv[1], "bench") == 0) return clai_tool_bench(argc - 2, argv + 2);
  if (strcmp(argv[1], "tune") == 0) return clai_tool_tune(argc - 2, argv + 2);
  if (strcmp(argv[1], "train") == 0) return fmnist_train_main("clai train", argc - 2, argv + 2);
  if (strcmp(argv[1], "gguf") == 0) return cmd_gguf(argc - 2, argv + 2);
  if (strcmp(argv[1], "generate") == 0) return llm_generate_main(argc - 1, argv + 1);
  if (strcmp(argv[1], "version") == 0) {
    printf("libclai %s\n", clai_version());
    return 0;
  }
  if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(stdout);
    return 0;
  }
  fprintf(stderr, "clai: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
