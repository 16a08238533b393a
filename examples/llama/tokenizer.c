/* tokenizer.c - byte-level BPE (GPT-2 style) for the Llama runner; tokenizer.h has the contract.
 *
 * Symbols: BPE works on integer symbol ids, never on strings. Ids 0 .. n_tokens - 1 are the tokens; a merge
 * whose left half, right half or result is not a token gets a "virtual" symbol id past the tokens, so that
 * merges through strings the vocabulary lacks still happen exactly as they would on strings, and a final
 * virtual symbol falls back to the tokens of its bytes. The merge table maps a pair of symbol ids to the
 * merge's rank and result, so merging costs one hash probe per candidate pair.
 *
 * Memory: the tokenizer is immutable after llm_tokenizer_new; llm_tokenize allocates its own work buffers
 * (sized by the longest piece, not by the whole text), so one tokenizer serves several threads. */
#include "tokenizer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unicode-tables.h"

#define PRE_GPT2 0
#define PRE_SMOLLM 1

/* GPT-2's byte-to-unicode characters lie in U+0021 .. U+0143. */
#define B2U_LIMIT 0x144

typedef struct merge_slot {
  uint64_t key;   /* left << 32 | right (symbol ids) */
  int32_t rank;   /* -1: empty slot */
  int32_t result; /* symbol id of left + right */
} merge_slot;

struct llm_tokenizer {
  int64_t n_tokens;
  int64_t n_syms; /* tokens, then virtual symbols */
  int pre;
  int32_t bos, eos, unk;
  char *arena;          /* token texts, merge texts (halves joined), decoded token bytes */
  size_t *sym_off;      /* [max symbols] text of each symbol in arena */
  uint32_t *sym_len;
  size_t *dec_off;      /* [n_tokens] decoded bytes of each token in arena */
  uint32_t *dec_len;
  uint8_t *types;       /* [n_tokens] */
  size_t max_dec;       /* the longest decoded token, for the streaming decoder's buffer */
  int32_t *str_slots;   /* open addressing, symbol text -> symbol id; -1 empty */
  size_t str_mask;
  merge_slot *merge_slots;
  size_t merge_mask;
  int32_t byte_sym[256]; /* symbol of byte b's character, -1 when no token or merge has it */
  int32_t byte_tok[256]; /* the token byte b becomes when it ends up alone: its character's token, or unk */
  int32_t *spec;         /* special token ids by first byte, longest first */
  int64_t n_spec;
  int64_t spec_first[257];
};

/* ---- small helpers ----------------------------------------------------------------------------------- */

static int fail_msg(char *err, size_t cap, const char *fmt, ...) {
  if (err != NULL && cap > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static int add_ok(size_t a, size_t b, size_t *r) { return !__builtin_add_overflow(a, b, r); }
static int mul_ok(size_t a, size_t b, size_t *r) { return !__builtin_mul_overflow(a, b, r); }

/* The smallest power of two >= 2 * n (a hash table at most half full), at least 16; 0 on overflow. */
static size_t table_size(size_t n) {
  size_t want, cap = 16;
  if (!mul_ok(n, 2, &want)) return 0;
  while (cap < want) {
    if (cap > SIZE_MAX / 2) return 0;
    cap *= 2;
  }
  return cap;
}

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 0x100000001b3ULL;
  }
  return h ^ (h >> 29);
}

static uint64_t hash_pair(uint64_t key) {
  key *= 0x9e3779b97f4a7c15ULL;
  return key ^ (key >> 31);
}

/* GPT-2's byte-to-unicode map: the printable Latin-1 bytes stand for themselves, the other 68 (controls,
 * space, DEL, the C1 block, NBSP, soft hyphen) for U+0100 onwards in byte order, so that every byte has a
 * visible character and BPE never sees whitespace inside a symbol. inv[cp] is byte + 1, 0 for none. */
typedef struct b2u_maps {
  uint32_t fwd[256];
  uint16_t inv[B2U_LIMIT];
} b2u_maps;

static const b2u_maps *b2u(void) {
  static b2u_maps m;
  static int ready;
  if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
    /* Idempotent: threads racing here all write the same values. */
    uint32_t next = 256;
    for (unsigned i = 0; i < 256; i++) {
      int printable = (i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE;
      m.fwd[i] = printable ? i : next++;
      m.inv[m.fwd[i]] = (uint16_t)(i + 1);
    }
    __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
  }
  return &m;
}

static size_t put_utf8(char *out, uint32_t cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

#define CP_INVALID 0xFFFFFFFFu

/* Decodes one UTF-8 character of the n >= 1 bytes at s into *cp and returns its length. Only well-formed
 * UTF-8 counts (no overlong forms, surrogates or values past U+10FFFF): anything else is one byte with
 * *cp = CP_INVALID, so bad input is carried through byte by byte instead of being rejected. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
  unsigned b = s[0];
  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  size_t need;
  unsigned lo = 0x80, hi = 0xBF; /* the range of the second byte */
  uint32_t v;
  if (b >= 0xC2 && b <= 0xDF) {
    need = 2, v = b & 0x1F;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 3, v = b & 0x0F;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 4, v = b & 0x07;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    *cp = CP_INVALID;
    return 1;
  }
  if (n < need || s[1] < lo || s[1] > hi) {
    *cp = CP_INVALID;
    return 1;
  }
  for (size_t i = 1; i < need; i++) {
    if ((s[i] & 0xC0) != 0x80) {
      *cp = CP_INVALID;
      return 1;
    }
    v = (v << 6) | (s[i] & 0x3F);
  }
  *cp = v;
  return need;
}

static int cp_class(uint32_t cp) {
  if (cp < 0x80) {
    if ((uint32_t)((cp | 0x20) - 'a') < 26) return LLM_UCD_LETTER;
    if ((uint32_t)(cp - '0') < 10) return LLM_UCD_NUMBER;
    if (cp == ' ' || (cp >= 9 && cp <= 13)) return LLM_UCD_SPACE;
    return LLM_UCD_OTHER;
  }
  if (cp == CP_INVALID) return LLM_UCD_OTHER; /* as U+FFFD, which llama.cpp puts there, would be */
  return llm_ucd_class(cp);
}

/* ---- the symbol and merge tables --------------------------------------------------------------------- */

static const char *sym_text(const llm_tokenizer *t, int32_t id) { return t->arena + t->sym_off[id]; }

/* The symbol whose text is (s, n), or -1; with limit, only ids below it count (tokens only). */
static int32_t str_find(const llm_tokenizer *t, const char *s, size_t n, int64_t limit) {
  size_t i = hash_bytes(s, n) & t->str_mask;
  for (;;) {
    int32_t id = t->str_slots[i];
    if (id < 0) return -1;
    if (t->sym_len[id] == n && memcmp(sym_text(t, id), s, n) == 0) return id < limit ? id : -1;
    i = (i + 1) & t->str_mask;
  }
}

/* The symbol of the text at arena offset off (n bytes): the existing one, or a new one (tokens are added
 * with their own id; other texts become virtual symbols). The table was sized for every symbol there can
 * be, so it never fills. */
static int32_t str_intern(llm_tokenizer *t, size_t off, size_t n, int32_t new_id) {
  const char *s = t->arena + off;
  size_t i = hash_bytes(s, n) & t->str_mask;
  for (;;) {
    int32_t id = t->str_slots[i];
    if (id < 0) break;
    if (t->sym_len[id] == n && memcmp(sym_text(t, id), s, n) == 0) return id;
    i = (i + 1) & t->str_mask;
  }
  if (new_id < 0) new_id = (int32_t)t->n_syms++;
  t->sym_off[new_id] = off;
  t->sym_len[new_id] = (uint32_t)n;
  t->str_slots[i] = new_id;
  return new_id;
}

static const merge_slot *merge_find(const llm_tokenizer *t, int32_t left, int32_t right) {
  uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
  size_t i = hash_pair(key) & t->merge_mask;
  for (;;) {
    const merge_slot *m = &t->merge_slots[i];
    if (m->rank < 0) return NULL;
    if (m->key == key) return m;
    i = (i + 1) & t->merge_mask;
  }
}

/* Adds a merge unless the pair has one already (the earlier, higher-priority one stays). */
static void merge_add(llm_tokenizer *t, int32_t left, int32_t right, int32_t rank, int32_t result) {
  uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
  size_t i = hash_pair(key) & t->merge_mask;
  while (t->merge_slots[i].rank >= 0) {
    if (t->merge_slots[i].key == key) return;
    i = (i + 1) & t->merge_mask;
  }
  t->merge_slots[i].key = key;
  t->merge_slots[i].rank = rank;
  t->merge_slots[i].result = result;
}

/* ---- building --------------------------------------------------------------------------------------- */

/* Writes token text (s, n) decoded to bytes at out and returns the length (never more than n). */
static size_t decode_token(int type, const char *s, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  if (type == LLM_TOKEN_CONTROL || type == LLM_TOKEN_UNKNOWN || type == LLM_TOKEN_USER_DEFINED ||
      type == LLM_TOKEN_UNUSED) {
    memcpy(out, s, n);
    return n;
  }
  if (type == LLM_TOKEN_BYTE && n == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>') {
    const char *h1 = memchr(hex, s[3] | 0x20, 16), *h2 = memchr(hex, s[4] | 0x20, 16);
    if (h1 != NULL && h2 != NULL && s[3] != 0 && s[4] != 0) {
      out[0] = (char)((h1 - hex) << 4 | (h2 - hex));
      return 1;
    }
  }
  /* Each character of the byte-to-unicode alphabet is one byte; anything else (not seen in GPT-2
   * vocabularies) is kept as it is rather than lost. */
  const b2u_maps *map = b2u();
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t l = utf8_next((const unsigned char *)s + i, n - i, &cp);
    int byte = cp < B2U_LIMIT ? (int)map->inv[cp] - 1 : -1;
    if (byte >= 0) {
      out[o++] = (char)byte;
    } else {
      memcpy(out + o, s + i, l);
      o += l;
    }
    i += l;
  }
  return o;
}

static int spec_cmp_ctx(const llm_tokenizer *t, int32_t a, int32_t b) {
  unsigned char fa = (unsigned char)sym_text(t, a)[0], fb = (unsigned char)sym_text(t, b)[0];
  if (fa != fb) return fa < fb ? -1 : 1;
  if (t->sym_len[a] != t->sym_len[b]) return t->sym_len[a] > t->sym_len[b] ? -1 : 1;
  return a < b ? -1 : a > b;
}

/* Insertion sort: a vocabulary has a few dozen special tokens at most (SmolLM2: 17), and qsort has no
 * context argument in C11. */
static void sort_specials(llm_tokenizer *t) {
  for (int64_t i = 1; i < t->n_spec; i++) {
    int32_t v = t->spec[i];
    int64_t j = i;
    while (j > 0 && spec_cmp_ctx(t, t->spec[j - 1], v) > 0) {
      t->spec[j] = t->spec[j - 1];
      j--;
    }
    t->spec[j] = v;
  }
}

int llm_tokenizer_new(llm_tokenizer **out, const llm_tokenizer_params *p, char *err, size_t cap) {
  llm_tokenizer *t = NULL;
  size_t n_sym_max, bytes, arena_len = 0, slots;
  if (out == NULL) return fail_msg(err, cap, "llm_tokenizer_new: out is NULL");
  *out = NULL;
  if (p == NULL) return fail_msg(err, cap, "llm_tokenizer_new: params is NULL");
  /* Symbol ids are int32: the tokens and up to three virtual symbols per merge must fit. */
  if (p->n_tokens <= 0 || p->n_tokens > INT32_MAX)
    return fail_msg(err, cap, "tokenizer: %lld tokens (want 1 .. %d)", (long long)p->n_tokens, INT32_MAX);
  if (p->n_merges < 0 || p->n_merges > (INT32_MAX - p->n_tokens) / 3)
    return fail_msg(err, cap, "tokenizer: %lld merges for %lld tokens (too many)", (long long)p->n_merges,
                    (long long)p->n_tokens);
  if (p->tokens == NULL || p->token_lens == NULL) return fail_msg(err, cap, "tokenizer: the token array is NULL");
  if (p->n_merges > 0 && (p->merges == NULL || p->merge_lens == NULL))
    return fail_msg(err, cap, "tokenizer: the merge array is NULL");
  int pre;
  if (p->pre == NULL || strcmp(p->pre, "gpt2") == 0 || strcmp(p->pre, "default") == 0)
    pre = PRE_GPT2;
  else if (strcmp(p->pre, "smollm") == 0)
    pre = PRE_SMOLLM;
  else
    return fail_msg(err, cap, "tokenizer: unknown pre-tokenizer \"%s\" (known: smollm, gpt2, default)", p->pre);
  const int32_t ids[3] = {p->bos_id, p->eos_id, p->unk_id};
  const char *id_names[3] = {"bos", "eos", "unknown"};
  for (int k = 0; k < 3; k++)
    if (ids[k] < -1 || ids[k] >= p->n_tokens)
      return fail_msg(err, cap, "tokenizer: %s id %d is not a token (0 .. %lld, or -1 for none)", id_names[k],
                      ids[k], (long long)p->n_tokens - 1);

  /* The arena holds each token text twice (as it is and decoded, which is never longer) and each merge
   * text once, less its space. */
  for (int64_t i = 0; i < p->n_tokens; i++) {
    if (p->tokens[i] == NULL && p->token_lens[i] > 0) return fail_msg(err, cap, "tokenizer: token %lld is NULL", (long long)i);
    if (p->token_lens[i] > UINT32_MAX / 2)
      return fail_msg(err, cap, "tokenizer: token %lld is %zu bytes long", (long long)i, p->token_lens[i]);
    if (!mul_ok(p->token_lens[i], 2, &bytes) || !add_ok(arena_len, bytes, &arena_len))
      return fail_msg(err, cap, "tokenizer: the token texts overflow size_t");
    int type = p->token_types != NULL ? p->token_types[i] : LLM_TOKEN_NORMAL;
    if (type < LLM_TOKEN_NORMAL || type > LLM_TOKEN_BYTE)
      return fail_msg(err, cap, "tokenizer: token %lld has type %d (want 1 .. 6)", (long long)i, type);
  }
  for (int64_t j = 0; j < p->n_merges; j++) {
    if (p->merges[j] == NULL || p->merge_lens[j] > UINT32_MAX / 2)
      return fail_msg(err, cap, "tokenizer: merge %lld is NULL or too long", (long long)j);
    if (!add_ok(arena_len, p->merge_lens[j], &arena_len))
      return fail_msg(err, cap, "tokenizer: the merge texts overflow size_t");
  }
  n_sym_max = (size_t)p->n_tokens + 3 * (size_t)p->n_merges; /* fits: checked against INT32_MAX above */

  t = calloc(1, sizeof *t);
  if (t == NULL) goto oom;
  t->n_tokens = t->n_syms = p->n_tokens;
  t->pre = pre;
  t->bos = p->bos_id, t->eos = p->eos_id, t->unk = p->unk_id;
  slots = table_size(n_sym_max);
  if (slots == 0 || !mul_ok(slots, sizeof *t->str_slots, &bytes)) goto oom;
  t->str_slots = malloc(bytes);
  t->str_mask = slots - 1;
  slots = table_size((size_t)p->n_merges);
  t->merge_slots = slots != 0 && mul_ok(slots, sizeof *t->merge_slots, &bytes) ? malloc(bytes) : NULL;
  t->merge_mask = slots - 1;
  t->arena = malloc(arena_len > 0 ? arena_len : 1);
  t->sym_off = calloc(n_sym_max, sizeof *t->sym_off); /* calloc checks n * size itself */
  t->sym_len = calloc(n_sym_max, sizeof *t->sym_len);
  t->dec_off = calloc((size_t)p->n_tokens, sizeof *t->dec_off);
  t->dec_len = calloc((size_t)p->n_tokens, sizeof *t->dec_len);
  t->types = calloc((size_t)p->n_tokens, 1);
  t->spec = calloc((size_t)p->n_tokens, sizeof *t->spec);
  if (t->str_slots == NULL || t->merge_slots == NULL || t->arena == NULL || t->sym_off == NULL ||
      t->sym_len == NULL || t->dec_off == NULL || t->dec_len == NULL || t->types == NULL || t->spec == NULL)
    goto oom;
  memset(t->str_slots, 0xFF, (t->str_mask + 1) * sizeof *t->str_slots);
  for (size_t i = 0; i <= t->merge_mask; i++) t->merge_slots[i].rank = -1;

  /* Tokens: text, type, decoded bytes; the first of several equal texts keeps the name. */
  size_t off = 0;
  for (int64_t i = 0; i < p->n_tokens; i++) {
    size_t n = p->token_lens[i];
    int type = p->token_types != NULL ? p->token_types[i] : LLM_TOKEN_NORMAL;
    if (n > 0) memcpy(t->arena + off, p->tokens[i], n);
    t->types[i] = (uint8_t)type;
    t->sym_off[i] = off;
    t->sym_len[i] = (uint32_t)n;
    str_intern(t, off, n, (int32_t)i); /* a text seen before keeps its lower id in the table */
    off += n;
    if (n > 0 && (type == LLM_TOKEN_CONTROL || type == LLM_TOKEN_USER_DEFINED || type == LLM_TOKEN_UNKNOWN))
      t->spec[t->n_spec++] = (int32_t)i;
  }
  for (int64_t i = 0; i < p->n_tokens; i++) {
    t->dec_off[i] = off;
    t->dec_len[i] = (uint32_t)decode_token(t->types[i], sym_text(t, (int32_t)i), t->sym_len[i], t->arena + off);
    off += t->dec_len[i];
    if (t->dec_len[i] > t->max_dec) t->max_dec = t->dec_len[i];
  }

  /* Merges: "left right" split at the first space (byte-level texts never hold a real space: it is
   * U+0120 there). The halves are stored joined, so one copy is the left half, the right half and the
   * result at once. */
  for (int64_t j = 0; j < p->n_merges; j++) {
    const char *m = p->merges[j];
    size_t n = p->merge_lens[j];
    const char *sp = memchr(m, ' ', n);
    if (sp == NULL || sp == m || sp == m + n - 1) {
      fail_msg(err, cap, "tokenizer: merge %lld \"%.*s\" is not two texts joined by a space", (long long)j,
               (int)(n < 64 ? n : 64), m);
      goto fail;
    }
    size_t nl = (size_t)(sp - m);
    memcpy(t->arena + off, m, nl);
    memcpy(t->arena + off + nl, sp + 1, n - nl - 1);
    int32_t left = str_intern(t, off, nl, -1);
    int32_t right = str_intern(t, off + nl, n - nl - 1, -1);
    int32_t result = str_intern(t, off, n - 1, -1);
    off += n - 1;
    merge_add(t, left, right, (int32_t)j, result);
  }

  /* Bytes: each starts BPE as the symbol of its character and ends, if nothing merged it, as that
   * character's token. A vocabulary may lack some (SmolLM2 has no token for 21 bytes: those that never
   * occur in UTF-8 and a few controls); such a byte becomes the unknown token, or nothing when there is
   * none, which is what llama.cpp and Hugging Face's BPE do with it too. */
  for (unsigned b = 0; b < 256; b++) {
    char ch[4];
    size_t n = put_utf8(ch, b2u()->fwd[b]);
    t->byte_sym[b] = str_find(t, ch, n, t->n_syms);
    t->byte_tok[b] = str_find(t, ch, n, t->n_tokens);
    if (t->byte_tok[b] < 0) t->byte_tok[b] = t->unk;
  }

  sort_specials(t);
  for (int b = 0, k = 0; b <= 256; b++) {
    while (k < t->n_spec && (unsigned char)sym_text(t, t->spec[k])[0] < b) k++;
    t->spec_first[b] = k;
  }
  *out = t;
  return 0;

oom:
  fail_msg(err, cap, "tokenizer: out of memory for %lld tokens and %lld merges", (long long)p->n_tokens,
           (long long)p->n_merges);
fail:
  llm_tokenizer_free(t);
  return -1;
}

void llm_tokenizer_free(llm_tokenizer *t) {
  if (t == NULL) return;
  free(t->arena);
  free(t->sym_off);
  free(t->sym_len);
  free(t->dec_off);
  free(t->dec_len);
  free(t->types);
  free(t->str_slots);
  free(t->merge_slots);
  free(t->spec);
  free(t);
}

int64_t llm_tokenizer_n_tokens(const llm_tokenizer *t) { return t->n_tokens; }
int32_t llm_tokenizer_bos(const llm_tokenizer *t) { return t->bos; }
int32_t llm_tokenizer_eos(const llm_tokenizer *t) { return t->eos; }

int32_t llm_tokenizer_find(const llm_tokenizer *t, const char *s, size_t len) {
  return str_find(t, s, len, t->n_tokens);
}

int llm_tokenizer_type(const llm_tokenizer *t, int32_t id) {
  return id >= 0 && id < t->n_tokens ? t->types[id] : 0;
}

/* ---- tokenizing ------------------------------------------------------------------------------------- */

typedef struct bpe_sym {
  int32_t id;         /* symbol id, -1 for a byte whose character no token or merge has */
  int32_t prev, next; /* neighbours in the piece, -1 at the ends */
  uint32_t start, len; /* bytes of the piece; len 0 once merged into the left neighbour */
} bpe_sym;

typedef struct bpe_cand {
  int32_t rank, left; /* ordered by rank, then leftmost */
  int32_t lid, rid;   /* the pair's ids when queued: a candidate whose symbols changed since is stale */
} bpe_cand;

typedef struct work {
  const llm_tokenizer *t;
  const unsigned char *text;
  int32_t *ids;
  int64_t cap, count;
  bpe_sym *sym;
  bpe_cand *heap;
  size_t room; /* bytes of piece the buffers hold */
  int64_t nheap;
  int oom;
} work;

static void emit(work *w, int32_t id) {
  if (id < 0) return; /* a byte the vocabulary cannot encode */
  if (w->count < w->cap) w->ids[w->count] = id;
  w->count++;
}

static int cand_less(const bpe_cand *a, const bpe_cand *b) {
  return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(work *w, int32_t left) {
  const bpe_sym *l = &w->sym[left];
  if (l->next < 0 || l->id < 0 || w->sym[l->next].id < 0) return;
  const merge_slot *m = merge_find(w->t, l->id, w->sym[l->next].id);
  if (m == NULL) return;
  bpe_cand c = {m->rank, left, l->id, w->sym[l->next].id};
  int64_t i = w->nheap++;
  while (i > 0 && cand_less(&c, &w->heap[(i - 1) / 2])) {
    w->heap[i] = w->heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  w->heap[i] = c;
}

static bpe_cand heap_pop(work *w) {
  bpe_cand top = w->heap[0], last = w->heap[--w->nheap];
  int64_t i = 0, n = w->nheap;
  for (;;) {
    int64_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && cand_less(&w->heap[c + 1], &w->heap[c])) c++;
    if (!cand_less(&w->heap[c], &last)) break;
    w->heap[i] = w->heap[c];
    i = c;
  }
  if (n > 0) w->heap[i] = last;
  return top;
}

/* BPE over one piece (bytes [a, b) of the text), emitting its tokens. */
static void bpe_piece(work *w, size_t a, size_t b) {
  const llm_tokenizer *t = w->t;
  size_t n = b - a;
  if (n == 1) {
    emit(w, t->byte_tok[w->text[a]]);
    return;
  }
  if (n > w->room) {
    /* Each merge queues at most two candidates: the heap never holds more than 3n. */
    size_t room = n > 64 ? n : 64, sb, hb;
    if (room > INT32_MAX / 3 || !mul_ok(room, sizeof *w->sym, &sb) || !mul_ok(3 * room, sizeof *w->heap, &hb)) {
      w->oom = 1;
      return;
    }
    bpe_sym *s = realloc(w->sym, sb);
    if (s != NULL) w->sym = s;
    bpe_cand *h = realloc(w->heap, hb);
    if (h != NULL) w->heap = h;
    if (s == NULL || h == NULL) {
      w->oom = 1;
      return;
    }
    w->room = room;
  }
  for (size_t i = 0; i < n; i++) {
    bpe_sym *s = &w->sym[i];
    s->id = t->byte_sym[w->text[a + i]];
    s->prev = (int32_t)i - 1;
    s->next = i + 1 < n ? (int32_t)i + 1 : -1;
    s->start = (uint32_t)i;
    s->len = 1;
  }
  w->nheap = 0;
  for (size_t i = 0; i + 1 < n; i++) heap_push(w, (int32_t)i);
  while (w->nheap > 0) {
    bpe_cand c = heap_pop(w);
    bpe_sym *l = &w->sym[c.left];
    /* Stale when either symbol has merged since it was queued (its id changed: a merge result is always a
     * longer text than its halves) or the left one has been merged away. */
    if (l->len == 0 || l->id != c.lid || l->next < 0 || w->sym[l->next].id != c.rid) continue;
    bpe_sym *r = &w->sym[l->next];
    l->id = merge_find(t, c.lid, c.rid)->result;
    l->len += r->len;
    r->len = 0;
    l->next = r->next;
    if (r->next >= 0) w->sym[r->next].prev = c.left;
    if (l->prev >= 0) heap_push(w, l->prev);
    heap_push(w, c.left);
  }
  for (int32_t i = 0; i >= 0; i = w->sym[i].next) {
    const bpe_sym *s = &w->sym[i];
    if (s->id >= 0 && s->id < t->n_tokens) {
      emit(w, s->id);
    } else {
      for (uint32_t k = 0; k < s->len; k++) emit(w, t->byte_tok[w->text[a + s->start + k]]);
    }
  }
}

static int class_at(const unsigned char *s, size_t pos, size_t end, size_t *len) {
  uint32_t cp;
  *len = utf8_next(s + pos, end - pos, &cp);
  return cp_class(cp);
}

/* GPT-2's split of bytes [s, e): 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+,
 * the first alternative that matches at each position, as the regex engine would take it. The lookahead
 * sees no further than e. */
static void gpt2_split(work *w, size_t s, size_t e) {
  const unsigned char *x = w->text;
  size_t pos = s, l;
  while (pos < e && !w->oom) {
    if (x[pos] == '\'' && pos + 1 < e) {
      unsigned char c1 = x[pos + 1], c2 = pos + 2 < e ? x[pos + 2] : 0;
      size_t n = 0;
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
        n = 2;
      else if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
        n = 3;
      if (n > 0) {
        bpe_piece(w, pos, pos + n);
        pos += n;
        continue;
      }
    }
    int k = class_at(x, pos, e, &l);
    /* " ?X+": an optional space, then a run of one class (letters, numbers or other), not whitespace. */
    size_t r = pos;
    int k2 = k;
    if (x[pos] == ' ') {
      r = pos + 1;
      k2 = r < e ? class_at(x, r, e, &l) : LLM_UCD_SPACE;
    }
    if (k2 != LLM_UCD_SPACE) {
      while (r < e && class_at(x, r, e, &l) == k2) r += l;
      bpe_piece(w, pos, r);
      pos = r;
      continue;
    }
    /* Whitespace: "\s+(?!\S)" takes the run but its last character when something follows it (which
     * then carries that space as its prefix); at the end of the range, or for a run of one, "\s+" takes
     * it all. */
    size_t last = pos, count = 0;
    r = pos;
    while (r < e && class_at(x, r, e, &l) == LLM_UCD_SPACE) {
      last = r;
      r += l;
      count++;
    }
    size_t end = count > 1 && r < e ? last : r;
    bpe_piece(w, pos, end);
    pos = end;
  }
}

/* Pre-tokenizes and encodes bytes [s, e), a stretch without special tokens. */
static void encode_text(work *w, size_t s, size_t e) {
  if (w->t->pre != PRE_SMOLLM) {
    gpt2_split(w, s, e);
    return;
  }
  /* "smollm": every \p{N} codepoint is a piece of its own, and GPT-2's split runs between them. */
  size_t run = s, pos = s, l;
  while (pos < e && !w->oom) {
    if (class_at(w->text, pos, e, &l) == LLM_UCD_NUMBER) {
      if (run < pos) gpt2_split(w, run, pos);
      bpe_piece(w, pos, pos + l);
      run = pos + l;
    }
    pos += l;
  }
  if (run < e && !w->oom) gpt2_split(w, run, e);
}

/* The special token that starts at s (n bytes left), the longest one, or -1. */
static int32_t special_at(const llm_tokenizer *t, const unsigned char *s, size_t n, int parse_special) {
  for (int64_t k = t->spec_first[s[0]]; k < t->spec_first[s[0] + 1]; k++) {
    int32_t id = t->spec[k];
    if (!parse_special && t->types[id] != LLM_TOKEN_USER_DEFINED) continue;
    size_t len = t->sym_len[id];
    if (len <= n && memcmp(sym_text(t, id), s, len) == 0) return id;
  }
  return -1;
}

int64_t llm_tokenize(const llm_tokenizer *t, const char *text, size_t len, int parse_special, int32_t *ids,
                     int64_t cap) {
  work w = {.t = t, .text = (const unsigned char *)text, .ids = ids, .cap = ids != NULL && cap > 0 ? cap : 0};
  if (len > UINT32_MAX) return -1; /* piece offsets are 32-bit; a 4 GiB prompt is not a prompt */
  size_t seg = 0;
  for (size_t i = 0; i < len && !w.oom;) {
    int32_t id = t->n_spec > 0 ? special_at(t, w.text + i, len - i, parse_special) : -1;
    if (id < 0) {
      i++;
      continue;
    }
    if (seg < i) encode_text(&w, seg, i);
    emit(&w, id);
    i += t->sym_len[id];
    seg = i;
  }
  if (seg < len && !w.oom) encode_text(&w, seg, len);
  free(w.sym);
  free(w.heap);
  return w.oom ? -1 : w.count;
}

/* ---- decoding --------------------------------------------------------------------------------------- */

const char *llm_token_bytes(const llm_tokenizer *t, int32_t id, size_t *len) {
  if (id < 0 || id >= t->n_tokens) {
    *len = 0;
    return NULL;
  }
  *len = t->dec_len[id];
  return t->arena + t->dec_off[id];
}

/* What a decoder shows for id: nothing for UNUSED tokens, and for CONTROL and UNKNOWN ones unless asked. */
static const char *shown_bytes(const llm_tokenizer *t, int32_t id, int render_special, size_t *len) {
  const char *s = llm_token_bytes(t, id, len);
  int type = t->types[id];
  if (type == LLM_TOKEN_UNUSED || (!render_special && (type == LLM_TOKEN_CONTROL || type == LLM_TOKEN_UNKNOWN)))
    *len = 0;
  return s;
}

int64_t llm_detokenize(const llm_tokenizer *t, const int32_t *ids, int64_t n, int render_special, char *out,
                       size_t cap) {
  size_t total = 0;
  for (int64_t i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= t->n_tokens) return -1;
    size_t len;
    const char *s = shown_bytes(t, ids[i], render_special, &len);
    if (total < cap) memcpy(out + total, s, len < cap - total ? len : cap - total);
    if (!add_ok(total, len, &total) || total > INT64_MAX) return -1;
  }
  if (cap > 0) out[total < cap ? total : cap - 1] = '\0';
  return (int64_t)total;
}

struct llm_detok {
  const llm_tokenizer *t;
  int render_special;
  size_t held;     /* bytes of an unfinished character, in pending */
  char pending[4];
  char *buf;       /* held bytes + one token (max_dec + 3 bytes), handed to the caller */
};

llm_detok *llm_detok_new(const llm_tokenizer *t, int render_special) {
  llm_detok *d = calloc(1, sizeof *d);
  if (d == NULL) return NULL;
  d->t = t;
  d->render_special = render_special;
  d->buf = malloc(t->max_dec + 4);
  if (d->buf == NULL) {
    free(d);
    return NULL;
  }
  return d;
}

void llm_detok_free(llm_detok *d) {
  if (d == NULL) return;
  free(d->buf);
  free(d);
}

/* How many bytes at the end of s[0 .. n) are the start of a character that later bytes may still
 * complete: a lead byte, then fewer continuation bytes than it announces, each in the range a well-formed
 * character allows. Anything else is passed on now: it can never become valid. */
static size_t unfinished_tail(const unsigned char *s, size_t n) {
  for (size_t back = 1; back <= 3 && back <= n; back++) {
    unsigned b = s[n - back];
    if ((b & 0xC0) == 0x80) continue;
    size_t need = b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
    if (need <= back) return 0;
    if (back >= 2) {
      unsigned c = s[n - back + 1], lo = 0x80, hi = 0xBF;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
      if (c < lo || c > hi) return 0;
    }
    return back;
  }
  return 0;
}

int llm_detok_feed(llm_detok *d, int32_t id, const char **out, size_t *len) {
  *out = d->buf;
  *len = 0;
  if (id < 0 || id >= d->t->n_tokens) return -1;
  size_t n;
  const char *s = shown_bytes(d->t, id, d->render_special, &n);
  /* The bytes held back last time wait in pending (buf was the caller's until this call). */
  memcpy(d->buf, d->pending, d->held);
  memcpy(d->buf + d->held, s, n);
  size_t total = d->held + n, keep = unfinished_tail((const unsigned char *)d->buf, total);
  memcpy(d->pending, d->buf + total - keep, keep);
  *len = total - keep;
  d->held = keep;
  return 0;
}

void llm_detok_flush(llm_detok *d, const char **out, size_t *len) {
  *out = d->pending;
  *len = d->held;
  d->held = 0;
}
