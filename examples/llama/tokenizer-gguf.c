/* tokenizer-gguf.c - the tokenizer a GGUF file describes (its tokenizer.ggml.* metadata), read through
 * libclai's GGUF accessors; tokenizer.c does the checking of what the arrays say. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clai.h"
#include "tokenizer.h"

/* An optional integer key: def when absent, -2 (never a valid id or -1) when it is not an int32. */
static int64_t get_id(const clai_gguf *g, const char *key, int64_t def) {
  int64_t v;
  clai_status st = clai_gguf_get_int(g, key, &v);
  if (st == CLAI_E_NOT_FOUND) return def;
  if (st != CLAI_OK || v < -1 || v > INT32_MAX) return -2;
  return v;
}

/* The string array `key` of n elements: pointers into the mapping and lengths, in arrays the caller frees. */
static int get_strings(const clai_gguf *g, const char *key, int64_t *n, const char ***ptrs, size_t **lens,
                       char *err, size_t cap) {
  int type;
  *ptrs = NULL;
  *lens = NULL;
  clai_status st = clai_gguf_get_array(g, key, &type, n);
  if (st != CLAI_OK) {
    snprintf(err, cap, "%s: %s", key, clai_gguf_errmsg(g));
    return -1;
  }
  if (type != CLAI_GGUF_STRING) {
    snprintf(err, cap, "%s: an array of GGUF type %d, not of strings", key, type);
    return -1;
  }
  /* calloc checks the count times the size; the file's reader has already checked that n strings fit in it. */
  *ptrs = calloc(*n > 0 ? (size_t)*n : 1, sizeof **ptrs);
  *lens = calloc(*n > 0 ? (size_t)*n : 1, sizeof **lens);
  if (*ptrs == NULL || *lens == NULL) {
    snprintf(err, cap, "%s: out of memory for %lld strings", key, (long long)*n);
    return -1;
  }
  for (int64_t j = 0; j < *n; j++) {
    if (clai_gguf_get_array_string(g, key, j, &(*ptrs)[j], &(*lens)[j]) != CLAI_OK) {
      snprintf(err, cap, "%s[%lld]: %s", key, (long long)j, clai_gguf_errmsg(g));
      return -1;
    }
  }
  return 0;
}

llm_tokenizer *llm_tokenizer_from_gguf(const clai_gguf *g, char *err, size_t cap) {
  llm_tokenizer *t = NULL;
  const char **tokens = NULL, **merges = NULL;
  size_t *token_lens = NULL, *merge_lens = NULL;
  int32_t *types = NULL;
  int64_t n_tokens = 0, n_merges = 0, n_types = 0;
  char local[256], pre[64];
  if (err == NULL || cap == 0) err = local, cap = sizeof local;
  if (g == NULL) {
    snprintf(err, cap, "llm_tokenizer_from_gguf: no file");
    goto done;
  }

  const char *s;
  size_t len;
  if (clai_gguf_get_string(g, "tokenizer.ggml.model", &s, &len) != CLAI_OK) {
    snprintf(err, cap, "tokenizer.ggml.model: %s", clai_gguf_errmsg(g));
    goto done;
  }
  if (len != 4 || memcmp(s, "gpt2", 4) != 0) {
    snprintf(err, cap, "tokenizer.ggml.model is \"%.*s\": only \"gpt2\" (byte-level BPE) is supported",
             (int)(len < 32 ? len : 32), s);
    goto done;
  }
  /* Files from before the key existed meant the plain GPT-2 split ("default"). */
  clai_status st = clai_gguf_get_string(g, "tokenizer.ggml.pre", &s, &len);
  if (st == CLAI_E_NOT_FOUND) {
    s = "default", len = 7;
  } else if (st != CLAI_OK) {
    snprintf(err, cap, "tokenizer.ggml.pre: %s", clai_gguf_errmsg(g));
    goto done;
  }
  if (len >= sizeof pre || memchr(s, '\0', len) != NULL) {
    snprintf(err, cap, "tokenizer: unknown pre-tokenizer \"%.*s\" (known: smollm, gpt2, default)",
             (int)(len < 32 ? len : 32), s);
    goto done;
  }
  memcpy(pre, s, len);
  pre[len] = '\0';

  if (get_strings(g, "tokenizer.ggml.tokens", &n_tokens, &tokens, &token_lens, err, cap) != 0) goto done;
  if (get_strings(g, "tokenizer.ggml.merges", &n_merges, &merges, &merge_lens, err, cap) != 0) goto done;

  /* Token types are int32, little-endian in the file, possibly unaligned there: read byte by byte. */
  int type;
  st = clai_gguf_get_array(g, "tokenizer.ggml.token_type", &type, &n_types);
  if (st == CLAI_OK) {
    const unsigned char *raw;
    if (type != CLAI_GGUF_INT32 || n_types != n_tokens) {
      snprintf(err, cap, "tokenizer.ggml.token_type: %lld elements of GGUF type %d (want %lld of int32)",
               (long long)n_types, type, (long long)n_tokens);
      goto done;
    }
    if (clai_gguf_get_array_data(g, "tokenizer.ggml.token_type", (const void **)&raw) != CLAI_OK) {
      snprintf(err, cap, "tokenizer.ggml.token_type: %s", clai_gguf_errmsg(g));
      goto done;
    }
    types = calloc(n_tokens > 0 ? (size_t)n_tokens : 1, sizeof *types);
    if (types == NULL) {
      snprintf(err, cap, "tokenizer: out of memory for %lld token types", (long long)n_tokens);
      goto done;
    }
    for (int64_t i = 0; i < n_tokens; i++) {
      const unsigned char *b = raw + 4 * i;
      types[i] = (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
    }
  } else if (st != CLAI_E_NOT_FOUND) {
    snprintf(err, cap, "tokenizer.ggml.token_type: %s", clai_gguf_errmsg(g));
    goto done;
  }

  int64_t bos = get_id(g, "tokenizer.ggml.bos_token_id", -1), eos = get_id(g, "tokenizer.ggml.eos_token_id", -1);
  int64_t unk = get_id(g, "tokenizer.ggml.unknown_token_id", -1);
  if (bos == -2 || eos == -2 || unk == -2) {
    snprintf(err, cap, "tokenizer: a bos, eos or unknown token id is not an int32");
    goto done;
  }
  /* The unknown id stands in for bytes the vocabulary cannot encode only when it is an UNKNOWN token:
   * SmolLM2 names <|endoftext|> (a control token), and llama.cpp drops such bytes rather than end the
   * text there. */
  if (unk >= 0 && (types == NULL || unk >= n_tokens || types[unk] != LLM_TOKEN_UNKNOWN)) unk = -1;

  llm_tokenizer_params p = {n_tokens, tokens, token_lens, types, n_merges, merges, merge_lens,
                            (int32_t)bos, (int32_t)eos, (int32_t)unk, pre};
  llm_tokenizer_new(&t, &p, err, cap); /* t stays NULL on failure, with the message in err */

done:
  free(tokens);
  free(token_lens);
  free(merges);
  free(merge_lens);
  free(types);
  return t;
}
