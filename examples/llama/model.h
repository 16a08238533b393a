/* model.h - a Llama-architecture language model (GGUF "llama": RMSNorm, RoPE, grouped-query attention with a
 * KV cache on the device, SwiGLU) built only on libclai's public API. An application, as the Fashion-MNIST
 * trainer is: examples/llama/ and `clai generate` share it. */
#ifndef LLM_MODEL_H
#define LLM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "clai.h"

/* The hyper-parameters, from the file's llama.* metadata. */
typedef struct llm_hparams {
  int64_t n_vocab, n_ctx_train, n_embd, n_layer, n_ff, n_head, n_head_kv, head_dim, rope_dims;
  double rope_base, rms_eps;
} llm_hparams;

typedef struct llm_layer {
  clai_tensor *attn_norm, *wqkv, *wo, *ffn_norm, *wgu, *wdown; /* wqkv = [q; k; v] rows, wgu = [gate; up] */
  /* When q, k and v (gate and up) do not share a dtype, as in llama.cpp's mixtures (Q4_K_M gives some
   * layers' attn_v Q6_K and the others Q4_K), wqkv (wgu) is NULL and they are kept apart, one product each */
  clai_tensor *wqkv_part[3], *wgu_part[2];
  clai_tensor *kvcache; /* [n_ctx, 2 * n_head_kv * head_dim]: a position's keys, then its values */
} llm_layer;

/* How to run the model; all zero: the defaults. */
typedef struct llm_options {
  int64_t n_ctx; /* KV cache length; 0: the file's context length, at most 4096 */
  int exact;     /* 1: f32 activations into every product and an f32 KV cache; 0 (default): activations are
                    quantized to Q8_0 before each product with quantized weights and the KV cache is f16, as
                    llama.cpp runs a quantized model (its logits are then matched to ~0.05, where exact f32
                    arithmetic differs from them by ~0.2 on SmolLM2) */
} llm_options;

typedef struct llm_model {
  clai_context *ctx;
  llm_hparams hp;
  clai_tensor *tok_embd, *out_norm, *output; /* output is tok_embd when the file ties them */
  llm_layer *layers;
  int64_t n_ctx;     /* KV cache length */
  int64_t n_past;    /* positions already in the cache */
  int exact;
  clai_dtype kv_dtype;
  uint64_t weight_bytes, cache_bytes;
  char arch_desc[256];
} llm_model;

/* Loads the model's weights from g into ctx (quantized weights stay quantized) and makes its KV cache (opt
 * may be NULL: defaults). On failure returns NULL with a message in err. */
llm_model *llm_model_load(clai_context *ctx, const clai_gguf *g, const llm_options *opt, char *err, size_t cap);
void llm_model_free(llm_model *m);

/* Runs tokens[0..n) at positions n_past.. and appends them to the KV cache. logits: an f32 tensor of ctx
 * that receives [n_out, n_vocab], where n_out is 1 (the last position's logits) or n (every position's,
 * when all is non-zero). Returns a status; the message is clai_errmsg(ctx) or, for the model's own checks,
 * err. */
clai_status llm_forward(llm_model *m, const int32_t *tokens, int64_t n, int all, clai_tensor *logits, char *err,
                        size_t cap);

/* Forgets the cache (a new sequence starts at position 0). */
void llm_reset(llm_model *m);

/* The model file used when --model is not given: $CLAI_LLM_MODEL, else
 * $XDG_DATA_HOME/clai/models/SmolLM2-135M-Instruct.Q4_1.gguf (XDG_DATA_HOME defaults to ~/.local/share), where
 * build-aux/get-model puts it. Writes the path into buf. */
void llm_default_model(char *buf, size_t cap);

#endif
