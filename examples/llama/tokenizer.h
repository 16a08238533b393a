/* tokenizer.h - the Llama runner's byte-level BPE tokenizer (GPT-2 style), as SmolLM2's GGUF describes it:
 * tokenizer.ggml.model "gpt2", pre-tokenizer "smollm" (or plain "gpt2").
 *
 * Text -> ids:
 *   1. Special tokens (types CONTROL, USER_DEFINED and UNKNOWN) are found in the text first, by their exact
 *      text, leftmost first and the longest one where several start at the same byte. Without parse_special
 *      only USER_DEFINED tokens are found (control text such as "<|im_start|>" typed by a user is then
 *      tokenized as ordinary text).
 *   2. The text between them is pre-tokenized into pieces. "smollm" first isolates every \p{N} codepoint,
 *      then both "smollm" and "gpt2" apply GPT-2's split, leftmost alternative first:
 *        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *      Bytes that are not valid UTF-8 stay single bytes, in the class of punctuation.
 *   3. Each piece's bytes are BPE-merged: starting from one symbol per byte (the token whose text is the
 *      byte's GPT-2 byte-to-unicode character), the adjacent pair with the lowest merge rank is merged
 *      until none has a rank (the leftmost pair among equal ones). A final symbol that is not a token
 *      becomes the tokens of its bytes. A byte whose character is not a token at all becomes the unknown
 *      token, or nothing when there is none (as in llama.cpp and Hugging Face's BPE; SmolLM2 lacks 21 of
 *      them: 0xC0, 0xC1, 0xF1, 0xF2, 0xF5 .. 0xFF and the controls 0x04, 0x06, 0x13, 0x14, 0x16, 0x1D).
 * Ids -> bytes: a normal token's text maps back through byte-to-unicode; USER_DEFINED tokens are their text;
 * CONTROL and UNKNOWN tokens are their text only when asked (render_special), UNUSED tokens are nothing.
 *
 * This is application code of the Llama runner, not libclai API. An llm_tokenizer is immutable once built:
 * several threads may tokenize and decode with one at the same time. */
#ifndef CLAI_EXAMPLE_TOKENIZER_H
#define CLAI_EXAMPLE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

/* GGUF's token types (tokenizer.ggml.token_type). */
enum {
  LLM_TOKEN_NORMAL = 1,
  LLM_TOKEN_UNKNOWN = 2,
  LLM_TOKEN_CONTROL = 3,
  LLM_TOKEN_USER_DEFINED = 4,
  LLM_TOKEN_UNUSED = 5,
  LLM_TOKEN_BYTE = 6, /* text "<0xHH>": the byte HH */
};

/* What a tokenizer is built from. Strings are pointer + length, not NUL-terminated; they are copied, so
 * the arrays need to live only for the llm_tokenizer_new() call. */
typedef struct llm_tokenizer_params {
  int64_t n_tokens;
  const char *const *tokens;  /* [n_tokens] token texts, normal tokens in GPT-2's byte-to-unicode form */
  const size_t *token_lens;   /* [n_tokens] */
  const int32_t *token_types; /* [n_tokens] LLM_TOKEN_*, or NULL: all NORMAL */
  int64_t n_merges;
  const char *const *merges;  /* [n_merges] "left right", highest priority first */
  const size_t *merge_lens;   /* [n_merges] */
  int32_t bos_id, eos_id;     /* -1: none */
  int32_t unk_id;             /* -1: none; what a byte whose character is not a token becomes */
  const char *pre;            /* pre-tokenizer: "smollm", "gpt2" or "default" (the same as "gpt2"); NULL: "gpt2" */
} llm_tokenizer_params;

typedef struct llm_tokenizer llm_tokenizer;

/* Builds a tokenizer. Checks every input: counts that are negative or beyond int32 ids, NULL arrays, a
 * token type outside 1..6, a merge without a space between its halves, special ids out of range, an
 * unknown pre-tokenizer name. Duplicate token texts keep the lowest id, duplicate merges the highest
 * priority. Returns 0, or -1 with a message in err (cap bytes, NUL-terminated) and *out NULL. */
int llm_tokenizer_new(llm_tokenizer **out, const llm_tokenizer_params *p, char *err, size_t cap);

/* Builds the tokenizer a GGUF file's metadata describes (tokenizer.ggml.model must be "gpt2"); in
 * tokenizer-gguf.c. Returns NULL with a message in err on failure. */
struct clai_gguf;
llm_tokenizer *llm_tokenizer_from_gguf(const struct clai_gguf *g, char *err, size_t cap);

/* Frees t; NULL is a no-op. */
void llm_tokenizer_free(llm_tokenizer *t);

int64_t llm_tokenizer_n_tokens(const llm_tokenizer *t);
int32_t llm_tokenizer_bos(const llm_tokenizer *t); /* -1: none */
int32_t llm_tokenizer_eos(const llm_tokenizer *t); /* -1: none */
/* The id of the token whose text is exactly (s, len), -1 when there is none. */
int32_t llm_tokenizer_find(const llm_tokenizer *t, const char *s, size_t len);
/* The type of token id (LLM_TOKEN_*), 0 when id is out of range. */
int llm_tokenizer_type(const llm_tokenizer *t, int32_t id);

/* Tokenizes len bytes of text (any bytes: invalid UTF-8 is tokenized byte by byte, NUL is a byte like
 * any other). Writes the first min(count, cap) ids to ids (which may be NULL when cap is 0) and returns
 * count, the number of ids the whole text needs, as snprintf does: a return above cap means the ids were
 * cut short. Nothing is added at either end (no BOS: the caller adds it where the model wants one).
 * Returns -1 only when memory for the work buffers cannot be allocated or len is 4 GiB or more (piece
 * offsets are 32-bit). */
int64_t llm_tokenize(const llm_tokenizer *t, const char *text, size_t len, int parse_special, int32_t *ids,
                     int64_t cap);

/* The bytes token id decodes to, valid while t lives: for CONTROL and UNKNOWN tokens their text, which
 * llm_detokenize and the streaming decoder leave out unless asked to render special tokens. *len is set;
 * NULL (and *len 0) for an id out of range. */
const char *llm_token_bytes(const llm_tokenizer *t, int32_t id, size_t *len);

/* Decodes n ids into out like snprintf: writes at most cap - 1 bytes and a NUL (when cap > 0) and returns
 * the full length. render_special: CONTROL and UNKNOWN tokens as their text instead of nothing. Returns -1
 * for an id out of range (nothing useful is in out then). */
int64_t llm_detokenize(const llm_tokenizer *t, const int32_t *ids, int64_t n, int render_special, char *out,
                       size_t cap);

/* A streaming decoder: feed the ids one at a time as a model produces them and get back only complete
 * UTF-8 characters. The bytes of a character that a token ends in the middle of are held back until the
 * token that completes it (an emoji spread over several tokens); bytes that can no longer become a valid
 * character are passed on as they are. */
typedef struct llm_detok llm_detok;

/* A decoder for t (which must outlive it); NULL when out of memory. */
llm_detok *llm_detok_new(const llm_tokenizer *t, int render_special);
void llm_detok_free(llm_detok *d);
/* Feeds one id: *out, *len are the bytes ready to print (valid until the next call on d; *len may be 0).
 * Returns 0, or -1 for an id out of range (nothing is consumed or emitted). */
int llm_detok_feed(llm_detok *d, int32_t id, const char **out, size_t *len);
/* Ends the stream: the bytes still held back (an incomplete character at the very end), as they are. */
void llm_detok_flush(llm_detok *d, const char **out, size_t *len);

#endif
