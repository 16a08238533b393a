/* model.c - the Llama forward pass on libclai's public API (see model.h).
 *
 * Per block, for n tokens at positions p0 .. p0 + n - 1 (x is the [n, d] residual stream, f32):
 *   qkv = rmsnorm(x; attn_norm) [Wq; Wk; Wv]^T                    (one product: the three weights are loaded
 *                                                                 into row ranges of one tensor)
 *   q, k = rope(q, k) in place (one launch);  cache[p0 ..] = [k v]  (one copy)
 *   a = attention(q, K cache[0 .. p0 + n), V cache[...], causal)  (grouped heads: head h reads kv head
 *                                                                  h / (n_head / n_head_kv))
 *   x += a Wo^T                                                    (beta = 1: the residual add is free)
 *   gu = rmsnorm(x; ffn_norm) [Wgate; Wup]^T;  x += (silu(gate) * up) Wdown^T
 * The RMSNorms and the SwiGLU are the prologues of the products that read them (clai_matmul_pro): for a
 * decode step a block is seven launches. Then logits = rmsnorm(x; output_norm) Wout^T for the positions asked
 * for. RoPE rotates adjacent pairs (x[2i], x[2i+1]) with base rope.freq_base, as llama.cpp does for GGUF llama models (their Q and K weights
 * are stored permuted for that pairing). A block's cache is position-major, [n_ctx, 2 * n_head_kv * head_dim]
 * with a position's keys then its values, so the rows of n new positions are one dense slice that one copy
 * fills, and the attention reads keys and values as strided views of it. In llama.cpp's scheme (the default)
 * every product with quantized weights sees its activations rounded as llama.cpp rounds them for that weight
 * type (Q8_0, or Q8_K for K-quants; the prologues' last step), and the cache is f16. */
#include "model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_err(char *err, size_t cap, const char *fmt, ...) {
  if (err == NULL || cap == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, cap, fmt, ap);
  va_end(ap);
}

static int get_i(const clai_gguf *g, const char *key, int64_t *v, int required, char *err, size_t cap) {
  clai_status st = clai_gguf_get_int(g, key, v);
  if (st == CLAI_OK) return 1;
  if (!required && st == CLAI_E_NOT_FOUND) return 1;
  set_err(err, cap, "%s", clai_gguf_errmsg(g));
  return 0;
}

static int get_f(const clai_gguf *g, const char *key, double *v, int required, char *err, size_t cap) {
  clai_status st = clai_gguf_get_float(g, key, v);
  if (st == CLAI_OK) return 1;
  if (!required && st == CLAI_E_NOT_FOUND) return 1;
  set_err(err, cap, "%s", clai_gguf_errmsg(g));
  return 0;
}

/* The directory entry of tensor `name`, checked against the expected shape (rows, cols; rows 0 for 1-d). */
static int tensor_info(const clai_gguf *g, const char *name, int64_t rows, int64_t cols, clai_gguf_tensor_info *ti,
                       char *err, size_t cap) {
  int64_t i = clai_gguf_find_tensor(g, name);
  if (i < 0) {
    set_err(err, cap, "the model has no tensor %s", name);
    return 0;
  }
  if (clai_gguf_tensor_info_get(g, i, ti) != CLAI_OK) {
    set_err(err, cap, "%s", clai_gguf_errmsg(g));
    return 0;
  }
  const int ok = rows == 0 ? ti->ndim == 1 && ti->shape[0] == cols
                           : ti->ndim == 2 && ti->shape[0] == rows && ti->shape[1] == cols;
  if (!ok) {
    char got[160] = "[", want[64];
    for (int i = 0, len = 1; i < ti->ndim && len < 140; i++)
      len += snprintf(got + len, sizeof got - (size_t)len, "%s%lld", i ? ", " : "", (long long)ti->shape[i]);
    strcat(got, "]");
    if (rows == 0) snprintf(want, sizeof want, "[%lld]", (long long)cols);
    else snprintf(want, sizeof want, "[%lld, %lld]", (long long)rows, (long long)cols);
    set_err(err, cap, "tensor %s has shape %s, expected %s", name, got, want);
    return 0;
  }
  if (ti->dtype < 0) {
    set_err(err, cap, "tensor %s has GGUF type %s, which libclai cannot load", name,
            clai_gguf_ggml_type_name(ti->ggml_type));
    return 0;
  }
  return 1;
}

static clai_tensor *load(llm_model *m, const clai_gguf *g, const char *name, int64_t rows, int64_t cols, char *err,
                         size_t cap) {
  clai_gguf_tensor_info ti;
  if (!tensor_info(g, name, rows, cols, &ti, err, cap)) return NULL;
  clai_tensor *t = NULL;
  if (clai_gguf_tensor_load(m->ctx, g, name, &t) != CLAI_OK) {
    set_err(err, cap, "%s", clai_errmsg(m->ctx));
    return NULL;
  }
  m->weight_bytes += ti.bytes;
  return t;
}

/* Loads the weights names[0..n) (each [rows[i], cols]) into row ranges of one tensor *stacked, one product for
 * all of them, when they have one dtype; else each into parts[i] (*stacked stays NULL), a product each. Returns
 * 0 with a message in err on failure (the caller frees what was loaded). */
static int load_stacked(llm_model *m, const clai_gguf *g, int n, char names[][96], const int64_t *rows, int64_t cols,
                        clai_tensor **stacked, clai_tensor **parts, char *err, size_t cap) {
  clai_gguf_tensor_info ti[4];
  int64_t total = 0;
  int same = 1;
  for (int i = 0; i < n; i++) {
    if (!tensor_info(g, names[i], rows[i], cols, &ti[i], err, cap)) return 0;
    same &= ti[i].dtype == ti[0].dtype;
    total += rows[i];
  }
  if (!same) {
    for (int i = 0; i < n; i++)
      if (!(parts[i] = load(m, g, names[i], rows[i], cols, err, cap))) return 0;
    return 1;
  }
  const int64_t shape[2] = {total, cols};
  clai_tensor *t = NULL;
  if (clai_tensor_init(m->ctx, &t, (clai_dtype)ti[0].dtype, 2, shape) != CLAI_OK) {
    set_err(err, cap, "%s", clai_errmsg(m->ctx));
    return 0;
  }
  int64_t r0 = 0;
  for (int i = 0; i < n; i++) {
    clai_tensor *v = NULL;
    clai_status st = clai_tensor_slice(t, &v, 0, r0, r0 + rows[i], 1);
    if (st == CLAI_OK) st = clai_gguf_tensor_load_into(m->ctx, g, names[i], v);
    clai_tensor_free(v);
    if (st != CLAI_OK) {
      set_err(err, cap, "%s", clai_errmsg(m->ctx));
      clai_tensor_free(t);
      return 0;
    }
    m->weight_bytes += ti[i].bytes;
    r0 += rows[i];
  }
  *stacked = t;
  return 1;
}

static int read_hparams(const clai_gguf *g, llm_hparams *hp, char *err, size_t cap) {
  const char *arch = NULL;
  size_t alen = 0;
  if (clai_gguf_get_string(g, "general.architecture", &arch, &alen) != CLAI_OK) {
    set_err(err, cap, "%s", clai_gguf_errmsg(g));
    return 0;
  }
  if (alen != 5 || memcmp(arch, "llama", 5) != 0) {
    set_err(err, cap, "general.architecture is \"%.*s\"; this runner knows \"llama\"", (int)(alen > 64 ? 64 : alen),
            arch);
    return 0;
  }
  memset(hp, 0, sizeof *hp);
  hp->rope_base = 10000.0;
  hp->rms_eps = 1e-5;
  if (!get_i(g, "llama.context_length", &hp->n_ctx_train, 1, err, cap) ||
      !get_i(g, "llama.embedding_length", &hp->n_embd, 1, err, cap) ||
      !get_i(g, "llama.block_count", &hp->n_layer, 1, err, cap) ||
      !get_i(g, "llama.feed_forward_length", &hp->n_ff, 1, err, cap) ||
      !get_i(g, "llama.attention.head_count", &hp->n_head, 1, err, cap))
    return 0;
  hp->n_head_kv = hp->n_head;
  if (!get_i(g, "llama.attention.head_count_kv", &hp->n_head_kv, 0, err, cap) ||
      !get_f(g, "llama.rope.freq_base", &hp->rope_base, 0, err, cap) ||
      !get_f(g, "llama.attention.layer_norm_rms_epsilon", &hp->rms_eps, 0, err, cap))
    return 0;
  if (hp->n_embd <= 0 || hp->n_layer <= 0 || hp->n_ff <= 0 || hp->n_head <= 0 || hp->n_head_kv <= 0 ||
      hp->n_ctx_train <= 0 || hp->n_embd > (1 << 20) || hp->n_ff > (1 << 22) || hp->n_layer > 4096 ||
      hp->n_embd % hp->n_head != 0 || hp->n_head % hp->n_head_kv != 0) {
    set_err(err, cap, "implausible hyper-parameters: embedding %lld, layers %lld, ff %lld, heads %lld/%lld",
            (long long)hp->n_embd, (long long)hp->n_layer, (long long)hp->n_ff, (long long)hp->n_head,
            (long long)hp->n_head_kv);
    return 0;
  }
  hp->head_dim = hp->n_embd / hp->n_head;
  hp->rope_dims = hp->head_dim;
  if (!get_i(g, "llama.rope.dimension_count", &hp->rope_dims, 0, err, cap)) return 0;
  if (hp->rope_dims <= 0 || hp->rope_dims > hp->head_dim || hp->rope_dims % 2 != 0 || hp->head_dim > 256 ||
      !(hp->rope_base > 0) || !(hp->rms_eps >= 0)) {
    set_err(err, cap, "unsupported attention: head dim %lld, rope dims %lld, rope base %g, eps %g",
            (long long)hp->head_dim, (long long)hp->rope_dims, hp->rope_base, hp->rms_eps);
    return 0;
  }
  return 1;
}

llm_model *llm_model_load(clai_context *ctx, const clai_gguf *g, const llm_options *opt, char *err, size_t cap) {
  llm_model *m = calloc(1, sizeof *m);
  if (m == NULL) {
    set_err(err, cap, "out of memory");
    return NULL;
  }
  m->ctx = ctx;
  const int64_t n_ctx = opt != NULL ? opt->n_ctx : 0;
  m->exact = opt != NULL && opt->exact;
  m->kv_dtype = m->exact ? CLAI_DTYPE_F32 : CLAI_DTYPE_F16;
  llm_hparams *hp = &m->hp;
  if (!read_hparams(g, hp, err, cap)) goto fail;
  clai_gguf_tensor_info ti;
  int64_t it = clai_gguf_find_tensor(g, "token_embd.weight");
  if (it < 0 || clai_gguf_tensor_info_get(g, it, &ti) != CLAI_OK || ti.ndim != 2 || ti.shape[1] != hp->n_embd) {
    set_err(err, cap, "token_embd.weight is missing or not [vocab, %lld]", (long long)hp->n_embd);
    goto fail;
  }
  hp->n_vocab = ti.shape[0];
  const int64_t d = hp->n_embd, nq = hp->n_head * hp->head_dim, nkv = hp->n_head_kv * hp->head_dim;
  if (!(m->tok_embd = load(m, g, "token_embd.weight", hp->n_vocab, d, err, cap))) goto fail;
  if (!(m->out_norm = load(m, g, "output_norm.weight", 0, d, err, cap))) goto fail;
  if (clai_gguf_find_tensor(g, "output.weight") >= 0) {
    if (!(m->output = load(m, g, "output.weight", hp->n_vocab, d, err, cap))) goto fail;
  } else {
    m->output = m->tok_embd; /* tied embeddings */
  }
  m->n_ctx = n_ctx > 0 ? n_ctx : hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
  m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
  if (m->layers == NULL) {
    set_err(err, cap, "out of memory");
    goto fail;
  }
  for (int64_t l = 0; l < hp->n_layer; l++) {
    llm_layer *L = &m->layers[l];
    char names[3][96];
    snprintf(names[0], sizeof names[0], "blk.%lld.attn_norm.weight", (long long)l);
    if (!(L->attn_norm = load(m, g, names[0], 0, d, err, cap))) goto fail;
    snprintf(names[0], sizeof names[0], "blk.%lld.ffn_norm.weight", (long long)l);
    if (!(L->ffn_norm = load(m, g, names[0], 0, d, err, cap))) goto fail;
    snprintf(names[0], sizeof names[0], "blk.%lld.attn_q.weight", (long long)l);
    snprintf(names[1], sizeof names[1], "blk.%lld.attn_k.weight", (long long)l);
    snprintf(names[2], sizeof names[2], "blk.%lld.attn_v.weight", (long long)l);
    const int64_t qkv_rows[3] = {nq, nkv, nkv};
    if (!load_stacked(m, g, 3, names, qkv_rows, d, &L->wqkv, L->wqkv_part, err, cap)) goto fail;
    snprintf(names[0], sizeof names[0], "blk.%lld.attn_output.weight", (long long)l);
    if (!(L->wo = load(m, g, names[0], d, nq, err, cap))) goto fail;
    snprintf(names[0], sizeof names[0], "blk.%lld.ffn_gate.weight", (long long)l);
    snprintf(names[1], sizeof names[1], "blk.%lld.ffn_up.weight", (long long)l);
    const int64_t gu_rows[2] = {hp->n_ff, hp->n_ff};
    if (!load_stacked(m, g, 2, names, gu_rows, d, &L->wgu, L->wgu_part, err, cap)) goto fail;
    snprintf(names[0], sizeof names[0], "blk.%lld.ffn_down.weight", (long long)l);
    if (!(L->wdown = load(m, g, names[0], d, hp->n_ff, err, cap))) goto fail;
    const int64_t cshape[2] = {m->n_ctx, 2 * nkv};
    const clai_dtype cdt = m->kv_dtype;
    if (clai_tensor_init(ctx, &L->kvcache, cdt, 2, cshape) != CLAI_OK) {
      set_err(err, cap, "KV cache: %s", clai_errmsg(ctx));
      goto fail;
    }
    m->cache_bytes += 2 * (uint64_t)m->n_ctx * (uint64_t)nkv * clai_dtype_size(cdt);
  }
  snprintf(m->arch_desc, sizeof m->arch_desc,
           "llama: %lld blocks, width %lld, ff %lld, heads %lld/%lld of %lld, vocab %lld, rope base %g, eps %g",
           (long long)hp->n_layer, (long long)hp->n_embd, (long long)hp->n_ff, (long long)hp->n_head,
           (long long)hp->n_head_kv, (long long)hp->head_dim, (long long)hp->n_vocab, hp->rope_base, hp->rms_eps);
  return m;
fail:
  llm_model_free(m);
  return NULL;
}

void llm_model_free(llm_model *m) {
  if (m == NULL) return;
  if (m->layers != NULL)
    for (int64_t l = 0; l < m->hp.n_layer; l++) {
      llm_layer *L = &m->layers[l];
      clai_tensor_free(L->attn_norm);
      clai_tensor_free(L->wqkv);
      for (int i = 0; i < 3; i++) clai_tensor_free(L->wqkv_part[i]);
      clai_tensor_free(L->wo);
      clai_tensor_free(L->ffn_norm);
      clai_tensor_free(L->wgu);
      for (int i = 0; i < 2; i++) clai_tensor_free(L->wgu_part[i]);
      clai_tensor_free(L->wdown);
      clai_tensor_free(L->kvcache);
    }
  free(m->layers);
  if (m->output != m->tok_embd) clai_tensor_free(m->output);
  clai_tensor_free(m->tok_embd);
  clai_tensor_free(m->out_norm);
  free(m);
}

void llm_reset(llm_model *m) { m->n_past = 0; }

void llm_default_model(char *buf, size_t cap) {
  const char *e = getenv("CLAI_LLM_MODEL");
  if (e != NULL && *e != '\0') {
    snprintf(buf, cap, "%s", e);
    return;
  }
  const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
  if (xdg != NULL && *xdg != '\0')
    snprintf(buf, cap, "%s/clai/models/SmolLM2-135M-Instruct.Q4_1.gguf", xdg);
  else
    snprintf(buf, cap, "%s/.local/share/clai/models/SmolLM2-135M-Instruct.Q4_1.gguf", home != NULL ? home : ".");
}


/* The views of one forward call; freed together. */
typedef struct views {
  clai_tensor *v[32];
  int n;
} views;

static clai_tensor *keep(views *vs, clai_tensor *t) {
  if (t != NULL) vs->v[vs->n++] = t;
  return t;
}

static void drop(views *vs) {
  for (int i = 0; i < vs->n; i++) clai_tensor_free(vs->v[i]);
  vs->n = 0;
}

/* A view of t: shape/strides of ndim dims at element offset off (relative to t). */
static clai_status view(views *vs, clai_tensor *t, int ndim, const int64_t *shape, const int64_t *strides, int64_t off,
                        clai_tensor **out) {
  clai_status st = clai_tensor_view(t, out, ndim, shape, strides, off);
  if (st == CLAI_OK) keep(vs, *out);
  return st;
}

#define TRY(call)                   \
  do {                              \
    st = (call);                    \
    if (st != CLAI_OK) goto done;   \
  } while (0)

/* out = P(in) W^T + beta out, P the prologue pro with, in llama.cpp's scheme (not exact), the rounding
 * llama.cpp applies to the activations of a product with W's type: Q8_K for its K-quants, Q8_0 for the
 * 32-value formats (their K is a multiple of the block), none for float weights. */
static clai_status product(const llm_model *m, clai_tensor *out, clai_tensor *in, const clai_tensor *w, float beta,
                           const clai_matmul_prologue *pro) {
  clai_matmul_prologue p = *pro;
  const clai_dtype dt = clai_tensor_dtype(w);
  p.round = m->exact ? CLAI_ROUND_NONE
            : dt == CLAI_DTYPE_Q4_K || dt == CLAI_DTYPE_Q6_K ? CLAI_ROUND_Q8_K
            : clai_dtype_block(dt) == 32 ? CLAI_ROUND_Q8_0
                                         : CLAI_ROUND_NONE;
  return clai_matmul_pro(m->ctx, out, in, w, 1, 1.0f, beta, &p, NULL);
}

/* product() for a stacked weight W, or each part's product into its column range outs[i] of out. */
static clai_status stacked_product(const llm_model *m, clai_tensor *out, clai_tensor *in, const clai_matmul_prologue *pro,
                                   const clai_tensor *w, int n, clai_tensor *const *parts, clai_tensor *const *outs) {
  if (w != NULL) return product(m, out, in, w, 0.0f, pro);
  clai_status st = CLAI_OK;
  for (int i = 0; i < n && st == CLAI_OK; i++) st = product(m, outs[i], in, parts[i], 0.0f, pro);
  return st;
}

clai_status llm_forward(llm_model *m, const int32_t *tokens, int64_t n, int all, clai_tensor *logits, char *err,
                        size_t cap) {
  clai_context *ctx = m->ctx;
  const llm_hparams *hp = &m->hp;
  const int64_t d = hp->n_embd, hd = hp->head_dim, H = hp->n_head, Hk = hp->n_head_kv, nq = H * hd, nkv = Hk * hd;
  const int64_t p0 = m->n_past, L = p0 + n, nqkv = nq + 2 * nkv, ff = hp->n_ff, n_out = all ? n : 1, C = m->n_ctx;
  if (n <= 0 || L > C) {
    set_err(err, cap, "%lld tokens at position %lld do not fit the context of %lld", (long long)n, (long long)p0,
            (long long)C);
    return CLAI_E_INVALID_ARG;
  }
  if (clai_tensor_ndim(logits) != 2 || clai_tensor_dim(logits, 0) != n_out || clai_tensor_dim(logits, 1) != hp->n_vocab) {
    set_err(err, cap, "logits must be [%lld, %lld]", (long long)n_out, (long long)hp->n_vocab);
    return CLAI_E_SHAPE;
  }
  clai_status st = CLAI_OK;
  views vs = {{0}, 0};
  clai_tensor *ids = NULL, *x = NULL, *qkv = NULL, *att = NULL, *gu = NULL;
  const int64_t sid[1] = {n}, sx[2] = {n, d}, sqkv[2] = {n, nqkv}, satt[2] = {n, nq}, sgu[2] = {n, 2 * ff};
  TRY(clai_tensor_init(ctx, &ids, CLAI_DTYPE_I32, 1, sid));
  TRY(clai_tensor_write(ids, tokens, (size_t)n * sizeof *tokens));
  TRY(clai_tensor_init(ctx, &x, CLAI_DTYPE_F32, 2, sx));
  TRY(clai_tensor_init(ctx, &qkv, m->kv_dtype, 2, sqkv));
  TRY(clai_tensor_init(ctx, &att, CLAI_DTYPE_F32, 2, satt));
  TRY(clai_tensor_init(ctx, &gu, CLAI_DTYPE_F32, 2, sgu));
  /* The prologue of every product (clai_matmul_pro): the RMSNorm before it and the SwiGLU before the down
   * projection, and in llama.cpp's scheme the rounding of its activations (product()). */
  clai_matmul_prologue plain;
  memset(&plain, 0, sizeof plain);
  plain.rms_eps = (float)hp->rms_eps;
  TRY(clai_gather_rows(ctx, x, m->tok_embd, ids));

  /* Views that are the same for every block: q and k together as [1, n, H + Hk, hd] (BLHD) for one RoPE, k
   * and v together as the cache rows they go to, q as [1, H, n, hd] for the attention, and its output. */
  clai_tensor *qk4, *kv2, *att_bhld, *q_bhld, *qkv_cols[3], *gu_cols[2];
  {
    const int64_t qs[4] = {1, n, H + Hk, hd}, qst[4] = {n * nqkv, nqkv, hd, 1};
    const int64_t kvs[2] = {n, 2 * nkv}, kvst[2] = {nqkv, 1};
    TRY(view(&vs, qkv, 4, qs, qst, 0, &qk4));
    TRY(view(&vs, qkv, 2, kvs, kvst, nq, &kv2));
    const int64_t qp[4] = {1, H, n, hd}, qpst[4] = {n * nqkv, hd, nqkv, 1};
    TRY(view(&vs, qkv, 4, qp, qpst, 0, &q_bhld));
    const int64_t ap[4] = {1, H, n, hd}, apst[4] = {n * nq, hd, nq, 1};
    TRY(view(&vs, att, 4, ap, apst, 0, &att_bhld));
    /* the column ranges the separate products of unstacked weights write */
    const int64_t qw[3] = {nq, nkv, nkv}, q0[3] = {0, nq, nq + nkv}, cst[2] = {nqkv, 1}, gst[2] = {2 * ff, 1};
    for (int i = 0; i < 3; i++) {
      const int64_t cs[2] = {n, qw[i]};
      TRY(view(&vs, qkv, 2, cs, cst, q0[i], &qkv_cols[i]));
    }
    for (int i = 0; i < 2; i++) {
      const int64_t cs[2] = {n, ff};
      TRY(view(&vs, gu, 2, cs, gst, i * ff, &gu_cols[i]));
    }
  }
  clai_rope_params rp;
  memset(&rp, 0, sizeof rp);
  rp.mode = CLAI_ROPE_INTERLEAVED;
  rp.layout = CLAI_ROPE_BLHD;
  rp.pos_offset = p0;
  rp.theta = (float)hp->rope_base;
  rp.rot_dims = hp->rope_dims;
  const float scale = (float)(1.0 / sqrt((double)hd));
  const int base_views = vs.n;
  for (int64_t l = 0; l < hp->n_layer; l++) {
    llm_layer *Ly = &m->layers[l];
    clai_tensor *kvc, *kall, *vall;
    clai_matmul_prologue pro = plain;
    pro.rms_weight = Ly->attn_norm;
    TRY(stacked_product(m, qkv, x, &pro, Ly->wqkv, 3, Ly->wqkv_part, qkv_cols));
    TRY(clai_rope(ctx, qk4, qk4, &rp));
    /* the new positions' keys and values into the cache, then every position so far as [1, Hk, L, hd] */
    const int64_t cs[2] = {n, 2 * nkv}, cst[2] = {2 * nkv, 1};
    TRY(view(&vs, Ly->kvcache, 2, cs, cst, p0 * 2 * nkv, &kvc));
    TRY(clai_copy(ctx, kvc, kv2));
    const int64_t as[4] = {1, Hk, L, hd}, ast[4] = {C * 2 * nkv, hd, 2 * nkv, 1};
    TRY(view(&vs, Ly->kvcache, 4, as, ast, 0, &kall));
    TRY(view(&vs, Ly->kvcache, 4, as, ast, nkv, &vall));
    TRY(clai_attention(ctx, att_bhld, NULL, q_bhld, kall, vall, scale, 1));
    TRY(product(m, x, att, Ly->wo, 1.0f, &plain));
    pro.rms_weight = Ly->ffn_norm;
    TRY(stacked_product(m, gu, x, &pro, Ly->wgu, 2, Ly->wgu_part, gu_cols));
    pro = plain;
    pro.glu = 1;
    pro.glu_op = CLAI_SILU;
    TRY(product(m, x, gu, Ly->wdown, 1.0f, &pro));
    while (vs.n > base_views) clai_tensor_free(vs.v[--vs.n]);
  }
  {
    clai_tensor *xl;
    const int64_t ls[2] = {n_out, d}, lst[2] = {d, 1};
    TRY(view(&vs, x, 2, ls, lst, (n - n_out) * d, &xl));
    clai_matmul_prologue pro = plain;
    pro.rms_weight = m->out_norm;
    TRY(product(m, logits, xl, m->output, 0.0f, &pro));
  }
  m->n_past = L;
done:
  if (st != CLAI_OK) set_err(err, cap, "%s", clai_errmsg(ctx));
  drop(&vs);
  clai_tensor_free(gu);
  clai_tensor_free(att);
  clai_tensor_free(qkv);
  clai_tensor_free(x);
  clai_tensor_free(ids);
  return st;
}
