/* generate.c - `clai generate`: prompt -> tokens -> one batched forward pass over the prompt -> a token at a
 * time, sampled on the device (clai_sample), with only the sampled id coming back to the host; text is
 * streamed as it is decoded. `clai bench llm`: prompt processing and generation throughput, median of
 * repeats, beside llama.cpp's llama-bench run in the same process tree on the same threads. */
#include "generate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "build-helper.h"
#include "clai.h"
#include "model.h"
#include "tokenizer.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Everything a run holds; freed by runner_free. */
typedef struct runner {
  clai_gguf *g;
  clai_context *ctx;
  llm_model *m;
  llm_tokenizer *tok;
  clai_tensor *logits, *ids;
  double load_s;
} runner;

static void runner_free(runner *r) {
  clai_tensor_free(r->ids);
  clai_tensor_free(r->logits);
  llm_model_free(r->m);
  llm_tokenizer_free(r->tok);
  clai_context_free(r->ctx);
  clai_gguf_close(r->g);
}

/* The file and its tokenizer (need_tokenizer), before the model: the prompt's length sizes the KV cache. */
static int runner_open(runner *r, const char *path, int need_tokenizer) {
  char err[1024];
  memset(r, 0, sizeof *r);
  r->load_s = now();
  clai_status st = clai_gguf_open(&r->g, path, err, sizeof err);
  if (st != CLAI_OK) {
    fprintf(stderr, "clai: %s\n", err);
    if (st == CLAI_E_IO)
      fprintf(stderr, "clai: get the model with build-aux/get-model (see README), or name one with --model\n");
    return 0;
  }
  if (need_tokenizer && (r->tok = llm_tokenizer_from_gguf(r->g, err, sizeof err)) == NULL) {
    fprintf(stderr, "clai: %s: %s\n", path, err);
    return 0;
  }
  return 1;
}

/* The context, the weights on the device and the KV cache. as_helper: this process is the build helper
 * of another (a context that compiles and computes nothing; see examples/build-helper); helper: the one
 * this process started, or NULL. */
static int runner_load(runner *r, const char *path, const llm_options *opt, const char *as_helper,
                       build_helper *helper) {
  char err[1024];
  clai_context_params p;
  memset(&p, 0, sizeof p);
  if (as_helper != NULL) p.eager = -2; /* the helper needs no copy kernels to start */
  clai_status st = clai_context_init_ex(&r->ctx, &p, err, sizeof err);
  if (st != CLAI_OK) {
    fprintf(stderr, "clai: no OpenCL context: %s\n", err);
    return 0;
  }
  if (as_helper != NULL && clai_context_share_builds(r->ctx, as_helper, CLAI_SHARE_HELP) != CLAI_OK) {
    fprintf(stderr, "clai: --as-build-helper: %s\n", clai_errmsg(r->ctx));
    return 0;
  }
  if (helper != NULL) build_helper_lead(helper, r->ctx);
  if ((r->m = llm_model_load(r->ctx, r->g, opt, err, sizeof err)) == NULL) {
    fprintf(stderr, "clai: %s: %s\n", path, err);
    return 0;
  }
  const int64_t ls[2] = {1, r->m->hp.n_vocab}, is[1] = {1};
  if (clai_tensor_init(r->ctx, &r->logits, CLAI_DTYPE_F32, 2, ls) != CLAI_OK ||
      clai_tensor_init(r->ctx, &r->ids, CLAI_DTYPE_I32, 1, is) != CLAI_OK) {
    fprintf(stderr, "clai: %s\n", clai_errmsg(r->ctx));
    return 0;
  }
  /* Warm-up: a pass of one token and one of 17 (above the one-pass kernel's rows) build or load the kernels
   * of both paths and the sampler, so that load_s holds the kernel builds of a first run and the tokens/s
   * that follow measure the model. */
  int32_t warm[17] = {0};
  st = CLAI_OK;
  if (r->m->n_ctx >= 17) st = llm_forward(r->m, warm, 17, 0, r->logits, err, sizeof err);
  llm_reset(r->m);
  if (st == CLAI_OK) st = llm_forward(r->m, warm, 1, 0, r->logits, err, sizeof err);
  llm_reset(r->m);
  if (st == CLAI_OK) st = clai_sample(r->ctx, r->ids, r->logits, NULL);
  if (st == CLAI_OK) st = clai_sync(r->ctx);
  if (st != CLAI_OK) {
    fprintf(stderr, "clai: warm-up: %s\n", clai_errmsg(r->ctx));
    return 0;
  }
  r->load_s = now() - r->load_s;
  return 1;
}

/* Writes s (len bytes) to f as the content of a JSON string. */
static void json_escape(FILE *f, const char *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    const unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c == '\n')
      fputs("\\n", f);
    else if (c == '\t')
      fputs("\\t", f);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
}

static void usage_generate(FILE *f) {
  fprintf(f,
          "usage: clai generate [--model FILE.gguf] [--prompt TEXT | --chat TEXT [--system TEXT]] [-n N]\n"
          "                     [--temp T] [--top-k K] [--top-p P] [--min-p P] [--seed S] [--ctx N] [--exact]\n"
          "                     [--ignore-eos] [--json] [--no-build-helper]\n"
          "  Generates text with a GGUF Llama model on the best OpenCL device (CLAI_DEVICE chooses another).\n"
          "  --chat wraps TEXT in the model's ChatML turn (<|im_start|>user ... <|im_start|>assistant), after a\n"
          "  system turn when --system is given. --temp 0 is greedy (default 0.8, top-k 40, top-p 0.95, seed 0:\n"
          "  the same seed gives the same text on every run). --exact runs f32 activations and an f32 KV cache\n"
          "  instead of llama.cpp's scheme (Q8_0 activations, f16 cache). Model: --model, else $CLAI_LLM_MODEL,\n"
          "  else the file build-aux/get-model installs. On a cold kernel cache a second process compiles the\n"
          "  load's and the prompt's kernels beside this one (it runs them ahead without computing);\n"
          "  --no-build-helper turns it off.\n");
}

static int parse_num(const char *opt, const char *v, double lo, double hi, double *out) {
  char *end = NULL;
  errno = 0;
  const double d = v != NULL ? strtod(v, &end) : NAN;
  if (v == NULL || end == v || *end != '\0' || errno != 0 || !(d >= lo && d <= hi)) {
    fprintf(stderr, "clai: %s needs a number in [%g, %g]%s%s\n", opt, lo, hi, v != NULL ? ", not " : "",
            v != NULL ? v : "");
    return 0;
  }
  *out = d;
  return 1;
}

int llm_generate_main(int argc, char **argv) {
  char model_path[4096];
  llm_default_model(model_path, sizeof model_path);
  const char *prompt = NULL, *chat = NULL, *system = NULL;
  double n_predict = 64, temp = 0.8, top_k = 40, top_p = 0.95, min_p = 0, seed = 0, n_ctx = 0;
  int json = 0, exact = 0, ignore_eos = 0, no_helper = 0;
  const char *as_helper = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int ok = 1, takes = 1;
    if (strcmp(a, "--model") == 0 && v != NULL) snprintf(model_path, sizeof model_path, "%s", v);
    else if (strcmp(a, "--prompt") == 0 && v != NULL) prompt = v;
    else if (strcmp(a, "--chat") == 0 && v != NULL) chat = v;
    else if (strcmp(a, "--system") == 0 && v != NULL) system = v;
    else if (strcmp(a, "-n") == 0 || strcmp(a, "--n-predict") == 0) ok = parse_num(a, v, 0, 1 << 20, &n_predict);
    else if (strcmp(a, "--temp") == 0) ok = parse_num(a, v, 0, 1e6, &temp);
    else if (strcmp(a, "--top-k") == 0) ok = parse_num(a, v, 0, CLAI_SAMPLE_MAX_CANDIDATES, &top_k);
    else if (strcmp(a, "--top-p") == 0) ok = parse_num(a, v, 0, 1, &top_p);
    else if (strcmp(a, "--min-p") == 0) ok = parse_num(a, v, 0, 1, &min_p);
    else if (strcmp(a, "--seed") == 0) ok = parse_num(a, v, 0, 9007199254740992.0, &seed);
    else if (strcmp(a, "--ctx") == 0) ok = parse_num(a, v, 0, 1 << 20, &n_ctx);
    else if (strcmp(a, "--as-build-helper") == 0 && v != NULL) as_helper = v;
    else if ((takes = 0, strcmp(a, "--no-build-helper") == 0)) no_helper = 1;
    else if ((takes = 0, strcmp(a, "--json") == 0)) json = 1;
    else if (strcmp(a, "--exact") == 0) exact = 1;
    else if (strcmp(a, "--ignore-eos") == 0) ignore_eos = 1;
    else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage_generate(stdout);
      return 0;
    } else {
      fprintf(stderr, "clai generate: unknown option or missing value: %s\n", a);
      usage_generate(stderr);
      return 2;
    }
    if (!ok) return 2;
    i += takes;
  }
  if ((prompt == NULL) == (chat == NULL)) {
    fprintf(stderr, "clai generate: give one of --prompt TEXT and --chat TEXT\n");
    usage_generate(stderr);
    return 2;
  }
  if (system != NULL && chat == NULL) {
    fprintf(stderr, "clai generate: --system goes with --chat\n");
    return 2;
  }
  /* The text the model sees. */
  char *text = NULL;
  size_t text_len = 0;
  if (chat != NULL) {
    const size_t cap = strlen(chat) + (system != NULL ? strlen(system) : 0) + 128;
    text = malloc(cap);
    if (text == NULL) return 1;
    int k = 0;
    if (system != NULL) k = snprintf(text, cap, "<|im_start|>system\n%s<|im_end|>\n", system);
    snprintf(text + k, cap - (size_t)k, "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n", chat);
  } else {
    text = strdup(prompt);
    if (text == NULL) return 1;
  }
  text_len = strlen(text);

  /* On a cold cache the load's warm-up and the prompt's pass are mostly compilation: a second process runs
   * them ahead without computing and compiles beside this one (examples/build-helper). */
  build_helper helper = BUILD_HELPER_NONE;
  const pid_t parent = getppid();
  const int helper_ran = as_helper == NULL && !no_helper && build_helper_start(&helper) == 0;
  runner r;
  llm_options opt = {0, exact};
  memset(&r, 0, sizeof r);
  int rc = 1;
  int32_t *ptoks = NULL, *gen = NULL;
  char *out_text = NULL;
  size_t out_len = 0, out_cap = 0;
  llm_detok *dt = NULL;
  if (!runner_open(&r, model_path, 1)) goto done;
  if (chat != NULL && llm_tokenizer_find(r.tok, "<|im_start|>", 12) < 0) {
    fprintf(stderr, "clai generate: this model's vocabulary has no <|im_start|>: --chat knows ChatML only\n");
    goto done;
  }
  const int64_t np = llm_tokenize(r.tok, text, text_len, 1, NULL, 0);
  if (np <= 0) {
    fprintf(stderr, "clai generate: the prompt gives no tokens\n");
    goto done;
  }
  const int64_t ng = (int64_t)n_predict;
  opt.n_ctx = n_ctx > 0 ? (int64_t)n_ctx : np + ng > 32 ? np + ng : 32; /* what this run needs (and the warm-up) */
  if (!runner_load(&r, model_path, &opt, as_helper, &helper)) goto done;
  if (np + ng > r.m->n_ctx) {
    fprintf(stderr, "clai generate: %lld prompt tokens + %lld to generate exceed the context of %lld (--ctx)\n",
            (long long)np, (long long)ng, (long long)r.m->n_ctx);
    goto done;
  }
  ptoks = malloc((size_t)np * sizeof *ptoks);
  gen = malloc((size_t)(ng > 0 ? ng : 1) * sizeof *gen);
  dt = llm_detok_new(r.tok, 0);
  if (ptoks == NULL || gen == NULL || dt == NULL) goto done;
  llm_tokenize(r.tok, text, text_len, 1, ptoks, np);

  char err[1024];
  if (as_helper != NULL) { /* the prompt's pass and a first step, compiled; nothing to print */
    int32_t first = 0;
    if (llm_forward(r.m, ptoks, np, 0, r.logits, err, sizeof err) == CLAI_OK &&
        clai_sample(r.ctx, r.ids, r.logits, NULL) == CLAI_OK && ng > 1)
      llm_forward(r.m, &first, 1, 0, r.logits, err, sizeof err);
    rc = 0;
    goto done;
  }
  clai_sample_params sp;
  memset(&sp, 0, sizeof sp);
  sp.temperature = (float)temp;
  sp.top_k = (int)top_k;
  sp.top_p = (float)top_p;
  sp.min_p = (float)min_p;
  sp.seed = (uint64_t)seed;
  const int32_t eos = llm_tokenizer_eos(r.tok);
  double t0 = now(), tp = 0, tg = 0;
  int64_t produced = 0;
  clai_status st = llm_forward(r.m, ptoks, np, 0, r.logits, err, sizeof err);
  for (int64_t s = 0; st == CLAI_OK && s < ng; s++) {
    sp.offset = (uint64_t)s;
    int32_t id = 0;
    st = clai_sample(r.ctx, r.ids, r.logits, &sp);
    if (st == CLAI_OK) st = clai_tensor_read(r.ids, &id, sizeof id); /* the one value that comes back */
    if (st != CLAI_OK) {
      snprintf(err, sizeof err, "%s", clai_errmsg(r.ctx));
      break;
    }
    if (s == 0) {
      tp = now() - t0;
      t0 = now();
    }
    if (s == 1) build_helper_stop(&helper, r.ctx); /* past the first step: all it compiles */
    gen[produced++] = id;
    const char *piece;
    size_t plen;
    if (llm_detok_feed(dt, id, &piece, &plen) == 0 && plen > 0) {
      if (!json) {
        fwrite(piece, 1, plen, stdout);
        fflush(stdout);
      }
      if (out_len + plen + 1 > out_cap) {
        out_cap = 2 * (out_len + plen + 1) + 256;
        char *nb = realloc(out_text, out_cap);
        if (nb == NULL) goto done;
        out_text = nb;
      }
      memcpy(out_text + out_len, piece, plen);
      out_len += plen;
    }
    if (id == eos && !ignore_eos) break;
    if (s + 1 < ng) st = llm_forward(r.m, &id, 1, 0, r.logits, err, sizeof err);
  }
  if (st != CLAI_OK) {
    fprintf(stderr, "\nclai generate: %s\n", err);
    goto done;
  }
  if (produced == 0) { /* -n 0: the prompt pass alone, waited for */
    clai_sync(r.ctx);
    tp = now() - t0;
  }
  else tg = now() - t0;
  const char *tail;
  size_t tlen;
  llm_detok_flush(dt, &tail, &tlen);
  if (tlen > 0 && !json) fwrite(tail, 1, tlen, stdout);
  clai_context_stats cs;
  clai_context_stats_get(r.ctx, &cs);
  clai_device_info di;
  clai_context_device_info(r.ctx, -1, &di);
  /* the first generated token costs a forward pass of the prompt; the others one step each */
  const double ptps = tp > 0 ? (double)np / tp : 0, gtps = produced > 1 && tg > 0 ? (double)(produced - 1) / tg : 0;
  if (json) {
    printf("{\"model\": \"");
    json_escape(stdout, model_path, strlen(model_path));
    printf("\", \"device\": \"");
    json_escape(stdout, di.name, strlen(di.name));
    printf("\", \"prompt_tokens\": [");
    for (int64_t i = 0; i < np; i++) printf("%s%d", i ? ", " : "", ptoks[i]);
    printf("], \"tokens\": [");
    for (int64_t i = 0; i < produced; i++) printf("%s%d", i ? ", " : "", gen[i]);
    printf("], \"text\": \"");
    if (out_text != NULL) json_escape(stdout, out_text, out_len);
    json_escape(stdout, tail, tlen);
    printf("\", \"prompt_tok_s\": %.2f, \"gen_tok_s\": %.2f, \"load_s\": %.3f, \"build_helper\": %s, "
           "\"peak_device_bytes\": %llu, \"weight_bytes\": %llu, \"kv_cache_bytes\": %llu}\n",
           ptps, gtps, r.load_s, helper_ran ? "true" : "false", (unsigned long long)cs.bytes_peak,
           (unsigned long long)r.m->weight_bytes, (unsigned long long)r.m->cache_bytes);
  } else {
    printf("\n");
    fprintf(stderr,
            "\n[%s on %s]\n[prompt: %lld tokens, %.1f tokens/s; generated %lld tokens, %.1f tokens/s; load %.2f s "
            "(with the kernels' builds on a first run%s); device memory peak %.1f MiB (weights %.1f, KV cache %.1f)]\n",
            r.m->arch_desc, di.name, (long long)np, ptps, (long long)produced, gtps, r.load_s,
            helper_ran ? ", a build helper beside" : "",
            cs.bytes_peak / 1048576.0, r.m->weight_bytes / 1048576.0, r.m->cache_bytes / 1048576.0);
    clai_kernel_profile kp[16];
    const int nk = clai_profile_get(r.ctx, kp, 16); /* -1 unless CLAI_PROFILE=1 */
    for (int i = 0; i < nk && i < 16; i++)
      fprintf(stderr, "  kernel: %-28s %7llu launches %10.1f us each, %8.3f s in all\n", kp[i].kernel,
              (unsigned long long)kp[i].launches, kp[i].seconds / (double)kp[i].launches * 1e6, kp[i].seconds);
  }
  rc = 0;
done:
  build_helper_stop(&helper, r.ctx);
  if (as_helper != NULL) build_helper_orphaned(as_helper, parent);
  llm_detok_free(dt);
  free(out_text);
  free(gen);
  free(ptoks);
  free(text);
  runner_free(&r);
  return rc;
}

/* ---- clai bench llm -------------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* llama-bench's tokens/s for (n_prompt, n_gen) from its JSON output, or 0. */
static double peer_ts(const char *json, int n_prompt, int n_gen) {
  for (const char *p = strstr(json, "\"n_prompt\":"); p != NULL; p = strstr(p + 1, "\"n_prompt\":")) {
    const char *g = strstr(p, "\"n_gen\":"), *t = strstr(p, "\"avg_ts\":");
    if (g == NULL || t == NULL) break;
    if (atoi(p + 11) == n_prompt && atoi(g + 8) == n_gen) return strtod(t + 9, NULL);
  }
  return 0;
}

static void usage_bench(FILE *f) {
  fprintf(f,
          "usage: clai bench llm [--model FILE.gguf] [--peer DIR] [--threads N] [--reps N] [--exact] [--json]\n"
          "  Prompt processing of 128 and 512 tokens (pp128, pp512: one batched forward pass) and generation of\n"
          "  64 tokens (tg64: one token at a time, sampled on the device), median tokens/s of --reps runs (3)\n"
          "  after a warm-up. With --peer DIR (a build of shared/peers/llama: DIR/llama-bench), llama.cpp's\n"
          "  llama-bench runs the same tests on the same model with --threads threads (default: the cores) in\n"
          "  the same run, and each line shows both and their ratio.\n");
}

int llm_bench_main(int argc, char **argv) {
  char model_path[4096];
  llm_default_model(model_path, sizeof model_path);
  const char *peer = NULL;
  double threads = (double)sysconf(_SC_NPROCESSORS_ONLN), reps = 3;
  int json = 0, exact = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int ok = 1, takes = 1;
    if (strcmp(a, "--model") == 0 && v != NULL) snprintf(model_path, sizeof model_path, "%s", v);
    else if (strcmp(a, "--peer") == 0 && v != NULL) peer = v;
    else if (strcmp(a, "--threads") == 0) ok = parse_num(a, v, 1, 1024, &threads);
    else if (strcmp(a, "--reps") == 0) ok = parse_num(a, v, 1, 100, &reps);
    else if ((takes = 0, strcmp(a, "--json") == 0)) json = 1;
    else if (strcmp(a, "--exact") == 0) exact = 1;
    else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage_bench(stdout);
      return 0;
    } else {
      fprintf(stderr, "clai bench llm: unknown option or missing value: %s\n", a);
      usage_bench(stderr);
      return 2;
    }
    if (!ok) return 2;
    i += takes;
  }
  runner r;
  memset(&r, 0, sizeof r);
  llm_options opt = {512 + 64 + 8, exact};
  int rc = 1;
  if (!runner_open(&r, model_path, 0) || !runner_load(&r, model_path, &opt, NULL, NULL)) goto done;
  clai_device_info di;
  clai_context_device_info(r.ctx, -1, &di);
  static const struct {
    const char *name;
    int n_prompt, n_gen;
  } tests[] = {{"pp128", 128, 0}, {"pp512", 512, 0}, {"tg64", 0, 64}};
  double ts[3];
  int32_t toks[512];
  for (int i = 0; i < 512; i++) toks[i] = (int32_t)((i * 7919 + 13) % r.m->hp.n_vocab); /* any ids: the cost is the same */
  char err[1024];
  for (int t = 0; t < 3; t++) {
    double s[101];
    const int n = (int)reps;
    for (int k = -1; k < n; k++) { /* k = -1: the warm-up (kernel builds, first allocations) */
      llm_reset(r.m);
      clai_status st = CLAI_OK;
      double t0 = now();
      if (tests[t].n_prompt > 0) {
        st = llm_forward(r.m, toks, tests[t].n_prompt, 0, r.logits, err, sizeof err);
        if (st == CLAI_OK) st = clai_sync(r.ctx); /* the pass has run */
      } else {
        int32_t id = toks[0];
        for (int g = 0; g < tests[t].n_gen && st == CLAI_OK; g++) {
          st = llm_forward(r.m, &id, 1, 0, r.logits, err, sizeof err);
          if (st == CLAI_OK) st = clai_sample(r.ctx, r.ids, r.logits, NULL);
          if (st == CLAI_OK) st = clai_tensor_read(r.ids, &id, sizeof id);
        }
      }
      if (st != CLAI_OK) {
        fprintf(stderr, "clai bench llm: %s: %s\n", tests[t].name, err[0] ? err : clai_errmsg(r.ctx));
        goto done;
      }
      if (k >= 0) s[k] = (double)(tests[t].n_prompt + tests[t].n_gen) / (now() - t0);
    }
    qsort(s, (size_t)n, sizeof s[0], cmp_double);
    ts[t] = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
  }
  double pts[3] = {0, 0, 0};
  if (peer != NULL) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s/llama-bench' -m '%s' -t %d -p 128,512 -n 64 -r %d -o json 2>/dev/null", peer,
             model_path, (int)threads, (int)reps);
    FILE *f = popen(cmd, "r");
    static char out[1 << 20];
    size_t len = f != NULL ? fread(out, 1, sizeof out - 1, f) : 0;
    out[len] = '\0';
    const int prc = f != NULL ? pclose(f) : -1;
    if (prc != 0 || len == 0) fprintf(stderr, "clai bench llm: %s/llama-bench did not run (status %d)\n", peer, prc);
    for (int t = 0; t < 3; t++) pts[t] = peer_ts(out, tests[t].n_prompt, tests[t].n_gen);
  }
  if (!json) {
    printf("clai bench llm: %s on %s (%s), median of %d\n", r.m->arch_desc, di.name,
           exact ? "exact f32" : "Q8_0 activations, f16 KV cache", (int)reps);
    printf("  %-6s %12s %14s %8s\n", "test", "clai tok/s", "llama.cpp", "ratio");
  }
  for (int t = 0; t < 3; t++) {
    const double ratio = pts[t] > 0 ? ts[t] / pts[t] : 0;
    if (json && pts[t] > 0)
      printf("{\"test\": \"%s\", \"tok_s\": %.2f, \"peer_tok_s\": %.2f, \"ratio\": %.3f, \"device\": \"%s\", "
             "\"threads\": %d}\n", tests[t].name, ts[t], pts[t], ratio, di.name, (int)threads);
    else if (json) /* no peer, or it did not run */
      printf("{\"test\": \"%s\", \"tok_s\": %.2f, \"peer_tok_s\": null, \"ratio\": null, \"device\": \"%s\", "
             "\"threads\": %d}\n", tests[t].name, ts[t], di.name, (int)threads);
    else if (pts[t] > 0)
      printf("  %-6s %12.1f %14.1f %7.2fx\n", tests[t].name, ts[t], pts[t], ratio);
    else
      printf("  %-6s %12.1f %14s\n", tests[t].name, ts[t], "-");
  }
  rc = 0;
done:
  runner_free(&r);
  return rc;
}
