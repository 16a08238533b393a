/* test-tokenizer.c - the Llama runner's byte-level BPE tokenizer (examples/llama/tokenizer.c), no OpenCL
 * device needed.
 *
 * Small vocabularies built by hand check each rule on its own: the pre-tokenizer's split (a vocabulary
 * whose merges build exactly the expected pieces, so the tokens show where the split fell), merge order,
 * merges through texts that are not tokens, special tokens, bad input, the snprintf-like capacity contract,
 * decoding and the streaming decoder.
 *
 * With CLAI_LLM_MODEL naming SmolLM2-135M-Instruct's GGUF, the real vocabulary must give llama.cpp's ids for
 * the five prompts of /work/shared/peers/llama/smollm2-reference.jsonl and decode its greedy continuations
 * to its text. Those are embedded below as C data rather than read from the jsonl: the test then needs no
 * JSON parser and no second path, and the expected values cannot drift from the test that checks them. */
#include <time.h>

#include "testutil.h"
#include "tokenizer.h"

/* ---- synthetic vocabularies -------------------------------------------------------------------------- */

/* GPT-2's byte-to-unicode character of byte b, written down again from its definition: printable Latin-1
 * stands for itself, the other bytes take U+0100 onwards in order. */
static uint32_t b2u(unsigned b) {
  uint32_t next = 256;
  for (unsigned i = 0; i < 256; i++) {
    int printable = (i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE;
    if (i == b) return printable ? i : next;
    if (!printable) next++;
  }
  return 0;
}

/* Appends the byte-level form of n bytes of s to out (NUL-terminated); returns its length. */
static size_t encode_bytes(const char *s, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t cp = b2u((unsigned char)s[i]);
    if (cp < 0x80) {
      out[o++] = (char)cp;
    } else {
      out[o++] = (char)(0xC0 | (cp >> 6));
      out[o++] = (char)(0x80 | (cp & 0x3F));
    }
  }
  out[o] = '\0';
  return o;
}

#define MAXV 512

/* A vocabulary under construction: the 256 byte characters first (ids 0..255 in byte order), then what
 * the test adds. Texts live in the struct. */
typedef struct vocab {
  int n, nm;
  char tok[MAXV][48];
  size_t len[MAXV];
  int32_t type[MAXV];
  char merge[MAXV][96];
  size_t mlen[MAXV];
  const char *tp[MAXV], *mp[MAXV];
} vocab;

static void vocab_init(vocab *v) {
  memset(v, 0, sizeof *v);
  for (unsigned b = 0; b < 256; b++) {
    char c = (char)b;
    v->len[b] = encode_bytes(&c, 1, v->tok[b]);
    v->type[b] = LLM_TOKEN_NORMAL;
  }
  v->n = 256;
}

static int vocab_add(vocab *v, const char *text, int type) {
  assert_true(v->n < MAXV);
  snprintf(v->tok[v->n], sizeof v->tok[0], "%s", text);
  v->len[v->n] = strlen(text);
  v->type[v->n] = type;
  return v->n++;
}

static void vocab_merge(vocab *v, const char *left, const char *right) {
  assert_true(v->nm < MAXV);
  v->mlen[v->nm] = (size_t)snprintf(v->merge[v->nm], sizeof v->merge[0], "%s %s", left, right);
  v->nm++;
}

/* Adds the merges (and tokens) that build the byte-level text of piece (n bytes) one byte at a time. */
static void vocab_piece(vocab *v, const char *piece, size_t n) {
  char left[96], right[8], whole[96];
  encode_bytes(piece, 1, left);
  for (size_t k = 1; k < n; k++) {
    encode_bytes(piece + k, 1, right);
    encode_bytes(piece, k + 1, whole);
    vocab_merge(v, left, right);
    vocab_add(v, whole, LLM_TOKEN_NORMAL);
    strcpy(left, whole);
  }
}

static llm_tokenizer *vocab_build(vocab *v, const char *pre) {
  for (int i = 0; i < v->n; i++) v->tp[i] = v->tok[i];
  for (int j = 0; j < v->nm; j++) v->mp[j] = v->merge[j];
  llm_tokenizer_params p = {v->n, v->tp, v->len, v->type, v->nm, v->mp, v->mlen, -1, -1, -1, pre};
  char err[256];
  llm_tokenizer *t = NULL;
  if (llm_tokenizer_new(&t, &p, err, sizeof err) != 0) fail_msg("llm_tokenizer_new: %s", err);
  return t;
}

/* Tokenizes text and renders the tokens' decoded bytes joined by '|', for comparison with what a test
 * expects ("Hello| world"). */
static void render(const llm_tokenizer *t, const char *text, size_t n, int parse_special, char *out, size_t cap) {
  int32_t ids[256];
  int64_t k = llm_tokenize(t, text, n, parse_special, ids, 256);
  assert_true(k >= 0 && k <= 256);
  size_t o = 0;
  out[0] = '\0';
  for (int64_t i = 0; i < k; i++) {
    size_t len;
    const char *s = llm_token_bytes(t, ids[i], &len);
    assert_non_null(s);
    assert_true(o + len + 2 < cap);
    if (i > 0) out[o++] = '|';
    memcpy(out + o, s, len);
    o += len;
  }
  out[o] = '\0';
}

/* Checks that pre-tokenizer `pre` splits text into the pieces of `want` ('|'-separated): builds a
 * vocabulary whose merges make exactly those pieces, tokenizes, and compares. A wrong split shows as
 * pieces cut short or left in bytes. */
static void check_split(const char *pre, const char *text, const char *want) {
  static vocab v;
  vocab_init(&v);
  for (const char *p = want; *p != '\0';) {
    const char *bar = strchr(p, '|');
    size_t n = bar != NULL ? (size_t)(bar - p) : strlen(p);
    vocab_piece(&v, p, n);
    p += n + (bar != NULL);
  }
  llm_tokenizer *t = vocab_build(&v, pre);
  char got[1024];
  render(t, text, strlen(text), 1, got, sizeof got);
  if (strcmp(got, want) != 0) fail_msg("%s split of \"%s\": got \"%s\", want \"%s\"", pre, text, got, want);
  llm_tokenizer_free(t);
}

/* ---- the pre-tokenizer ------------------------------------------------------------------------------- */

static void test_split_contractions(void **state) {
  (void)state;
  check_split("smollm", "I'm he's they're we've you'll she'd don't",
              "I|'m| he|'s| they|'re| we|'ve| you|'ll| she|'d| don|'t");
  /* Only lowercase contractions, as in GPT-2's regex; "'x" is punctuation then a word. */
  check_split("smollm", "IT'S 'x' rock'n'roll", "IT|'|S| '|x|'| rock|'|n|'|roll");
  /* An apostrophe at the very end is punctuation. */
  check_split("gpt2", "dogs'", "dogs|'");
}

static void test_split_digits(void **state) {
  (void)state;
  /* smollm: every digit on its own, and a space before a digit stays alone. */
  check_split("smollm", "abc 12345 x1y", "abc| |1|2|3|4|5| x|1|y");
  check_split("smollm", "pi=3.14", "pi|=|3|.|1|4");
  /* Non-ASCII \p{N}: ARABIC-INDIC DIGIT THREE, FOUR (Nd) and VULGAR FRACTION ONE HALF (No). */
  check_split("smollm", "n\331\243\331\244 \302\275", "n|\331\243|\331\244| |\302\275");
  /* gpt2: runs of digits with their space. */
  check_split("gpt2", "abc 12345 x1y", "abc| 12345| x|1|y");
}

static void test_split_letters(void **state) {
  (void)state;
  check_split("smollm", "Hello world  again", "Hello| world| | again");
  check_split("smollm", "  hi", " | hi");
  /* Non-ASCII letters belong to the word: "Ünïcödé" and CJK. */
  check_split("smollm", "\303\234n\303\257c\303\266d\303\251 \346\227\245\346\234\254",
              "\303\234n\303\257c\303\266d\303\251| \346\227\245\346\234\254");
}

static void test_split_punctuation(void **state) {
  (void)state;
  check_split("smollm", "Hi!!! ...?? (x)", "Hi|!!!| ...??| (|x|)");
  /* Symbols and emoji are "other" too: one run with the punctuation around them. */
  check_split("smollm", "a \360\237\231\202! b", "a| \360\237\231\202!| b");
}

static void test_split_whitespace(void **state) {
  (void)state;
  /* A run of whitespace leaves its last character to the next word; alone, or at the end, it is kept. */
  check_split("smollm", "a   b", "a|  | b");
  check_split("smollm", "a\n\nb", "a|\n|\n|b");
  check_split("smollm", "x \t\n y", "x| \t\n| y");
  check_split("smollm", "end   ", "end|   ");
  check_split("smollm", "def f():\n    return 1",
              "def| f|():|\n   | return| |1");
  /* Unicode whitespace: IDEOGRAPHIC SPACE and NO-BREAK SPACE are \s (and no word prefix: only ' ' is). */
  check_split("smollm", "a\343\200\200b c\302\240\302\240d", "a|\343\200\200|b| c|\302\240|\302\240|d");
  /* U+001F (a separator Python's isspace() counts, Unicode's White_Space does not) is punctuation. */
  check_split("smollm", "a \037b", "a| \037|b");
}

/* ---- BPE --------------------------------------------------------------------------------------------- */

static void test_bpe_ranks(void **state) {
  (void)state;
  static vocab v;
  char got[256];
  /* "b c" outranks "a b": abc -> a|bc. */
  vocab_init(&v);
  vocab_add(&v, "ab", LLM_TOKEN_NORMAL);
  vocab_add(&v, "bc", LLM_TOKEN_NORMAL);
  vocab_merge(&v, "b", "c");
  vocab_merge(&v, "a", "b");
  llm_tokenizer *t = vocab_build(&v, "gpt2");
  render(t, "abc", 3, 1, got, sizeof got);
  assert_string_equal(got, "a|bc");
  render(t, "abab", 4, 1, got, sizeof got);
  assert_string_equal(got, "ab|ab");
  llm_tokenizer_free(t);

  /* The other order, and equal pairs: the leftmost merges first (aaa -> aa|a). */
  vocab_init(&v);
  vocab_add(&v, "ab", LLM_TOKEN_NORMAL);
  vocab_add(&v, "bc", LLM_TOKEN_NORMAL);
  vocab_add(&v, "aa", LLM_TOKEN_NORMAL);
  vocab_merge(&v, "a", "b");
  vocab_merge(&v, "b", "c");
  vocab_merge(&v, "a", "a");
  t = vocab_build(&v, "gpt2");
  render(t, "abc", 3, 1, got, sizeof got);
  assert_string_equal(got, "ab|c");
  render(t, "aaa", 3, 1, got, sizeof got);
  assert_string_equal(got, "aa|a");
  render(t, "aaaaa", 5, 1, got, sizeof got);
  assert_string_equal(got, "aa|aa|a");
  llm_tokenizer_free(t);

  /* A merge through a text that is not a token ("xy"): xyz is reached through it, and a lone "xy" falls
   * back to its bytes. Merges with a space in their texts ("Ġ" is the byte-level space). */
  vocab_init(&v);
  int xyz = vocab_add(&v, "xyz", LLM_TOKEN_NORMAL);
  int sp_the = vocab_add(&v, "\304\240the", LLM_TOKEN_NORMAL);
  vocab_add(&v, "th", LLM_TOKEN_NORMAL);
  vocab_add(&v, "the", LLM_TOKEN_NORMAL);
  vocab_merge(&v, "x", "y");
  vocab_merge(&v, "xy", "z");
  vocab_merge(&v, "t", "h");
  vocab_merge(&v, "th", "e");
  vocab_merge(&v, "\304\240", "the");
  t = vocab_build(&v, "gpt2");
  int32_t ids[8];
  assert_int_equal(llm_tokenize(t, "xyz", 3, 1, ids, 8), 1);
  assert_int_equal(ids[0], xyz);
  assert_int_equal(llm_tokenize(t, "xy", 2, 1, ids, 8), 2);
  assert_int_equal(ids[0], 'x');
  assert_int_equal(ids[1], 'y');
  assert_int_equal(llm_tokenize(t, " the", 4, 1, ids, 8), 1);
  assert_int_equal(ids[0], sp_the);
  assert_int_equal(llm_tokenizer_find(t, "\304\240the", 5), sp_the);
  assert_int_equal(llm_tokenizer_find(t, "xy", 2), -1);
  llm_tokenizer_free(t);
}

/* ---- special tokens ---------------------------------------------------------------------------------- */

static void test_special_tokens(void **state) {
  (void)state;
  static vocab v;
  vocab_init(&v);
  int s = vocab_add(&v, "<|s|>", LLM_TOKEN_CONTROL);
  int sl = vocab_add(&v, "<|s|>long", LLM_TOKEN_CONTROL);
  int u = vocab_add(&v, "<u>", LLM_TOKEN_USER_DEFINED);
  int hi = vocab_add(&v, "hi", LLM_TOKEN_NORMAL);
  vocab_merge(&v, "h", "i");
  llm_tokenizer *t = vocab_build(&v, "smollm");
  int32_t ids[64];
  const char *text = "<|s|>hi<|s|><u> hi<|s|>";
  int64_t n = llm_tokenize(t, text, strlen(text), 1, ids, 64);
  /* ids 0..255 are the bytes in order: the space is token ' ' (its character is U+0120). */
  assert_int_equal(n, 7);
  assert_int_equal(ids[0], s);
  assert_int_equal(ids[1], hi);
  assert_int_equal(ids[2], s);
  assert_int_equal(ids[3], u);
  assert_int_equal(ids[4], ' ');
  assert_int_equal(ids[5], hi);
  assert_int_equal(ids[6], s);
  /* The longest special token that starts at a position wins. */
  n = llm_tokenize(t, "<|s|>longer", 11, 1, ids, 64);
  assert_int_equal(n, 3);
  assert_int_equal(ids[0], sl);
  assert_int_equal(ids[1], 'e');
  assert_int_equal(ids[2], 'r');
  /* Without parse_special control texts are ordinary text; user-defined tokens are still found. */
  char got[256];
  render(t, "<|s|><u>", 8, 0, got, sizeof got);
  assert_string_equal(got, "<|||s|||>|<u>");
  /* An unfinished special token at the end is text. */
  render(t, "hi<|s", 5, 1, got, sizeof got);
  assert_string_equal(got, "hi|<|||s");

  /* Decoding: control tokens are nothing unless rendered; user-defined tokens are their text. */
  n = llm_tokenize(t, text, strlen(text), 1, ids, 64);
  char out[64];
  assert_int_equal(llm_detokenize(t, ids, n, 0, out, sizeof out), 8);
  assert_string_equal(out, "hi<u> hi");
  assert_int_equal(llm_detokenize(t, ids, n, 1, out, sizeof out), (int64_t)strlen(text));
  assert_string_equal(out, text);
  assert_int_equal(llm_tokenizer_type(t, s), LLM_TOKEN_CONTROL);
  assert_int_equal(llm_tokenizer_type(t, -1), 0);
  llm_tokenizer_free(t);
}

/* ---- bad input and the capacity contract ------------------------------------------------------------- */

static void test_bad_input(void **state) {
  (void)state;
  static vocab v;
  vocab_init(&v);
  llm_tokenizer *t = vocab_build(&v, "smollm");
  int32_t ids[64];
  char out[64];
  /* Empty text, with and without a buffer. */
  assert_int_equal(llm_tokenize(t, "", 0, 1, ids, 64), 0);
  assert_int_equal(llm_tokenize(t, NULL, 0, 1, NULL, 0), 0);
  /* Invalid UTF-8 (a stray continuation byte, a truncated sequence, an overlong form, a surrogate,
   * 0xFF, an embedded NUL) goes through byte by byte and decodes back to the same bytes. */
  const char bad[] = "a\xff\xc3(b\x80\xe2\x82\xc0\xaf\xed\xa0\x80\0z\xf0\x9f\x99";
  size_t nb = sizeof bad - 1;
  int64_t n = llm_tokenize(t, bad, nb, 1, ids, 64);
  assert_int_equal(n, (int64_t)nb); /* no merges: one token per byte */
  for (size_t i = 0; i < nb; i++) assert_int_equal(ids[i], (unsigned char)bad[i]);
  assert_int_equal(llm_detokenize(t, ids, n, 0, out, sizeof out), (int64_t)nb);
  assert_memory_equal(out, bad, nb);
  llm_tokenizer_free(t);
  check_split("smollm", "a\xff\xc3(b\xe2\x82 c", "a|\xff\xc3(|b|\xe2\x82| c");

  /* Capacity: like snprintf, the count the whole text needs, and only cap ids written. */
  vocab_init(&v);
  t = vocab_build(&v, "gpt2");
  for (int i = 0; i < 8; i++) ids[i] = -7;
  assert_int_equal(llm_tokenize(t, "hello", 5, 1, ids, 2), 5);
  assert_int_equal(ids[0], 'h');
  assert_int_equal(ids[1], 'e');
  assert_int_equal(ids[2], -7);
  assert_int_equal(llm_tokenize(t, "hello", 5, 1, NULL, 0), 5);
  assert_int_equal(llm_tokenize(t, "hello", 5, 1, ids, 5), 5);
  assert_int_equal(ids[4], 'o');
  /* Decoding into a short buffer: cut and NUL-terminated, the full length returned; bad ids refused. */
  assert_int_equal(llm_detokenize(t, ids, 5, 0, out, 3), 5);
  assert_string_equal(out, "he");
  const int32_t bad_ids[] = {'a', 99999};
  assert_int_equal(llm_detokenize(t, bad_ids, 2, 0, out, sizeof out), -1);
  size_t len = 7;
  assert_null(llm_token_bytes(t, -1, &len));
  assert_int_equal(len, 0);
  llm_tokenizer_free(t);
}

static void expect_new_fails(const llm_tokenizer_params *p, const char *needle) {
  char err[256] = "";
  llm_tokenizer *t = (llm_tokenizer *)p; /* anything but NULL */
  assert_int_equal(llm_tokenizer_new(&t, p, err, sizeof err), -1);
  assert_null(t);
  if (strstr(err, needle) == NULL) fail_msg("message \"%s\" does not mention \"%s\"", err, needle);
}

static void test_bad_vocabulary(void **state) {
  (void)state;
  static vocab v;
  vocab_init(&v);
  vocab_merge(&v, "a", "b");
  for (int i = 0; i < v.n; i++) v.tp[i] = v.tok[i];
  for (int j = 0; j < v.nm; j++) v.mp[j] = v.merge[j];
  llm_tokenizer_params good = {v.n, v.tp, v.len, v.type, v.nm, v.mp, v.mlen, -1, -1, -1, "smollm"};
  llm_tokenizer_params p = good;
  p.pre = "llama-bpe";
  expect_new_fails(&p, "unknown pre-tokenizer \"llama-bpe\"");
  p = good;
  p.n_tokens = 0;
  expect_new_fails(&p, "0 tokens");
  p = good;
  p.bos_id = v.n;
  expect_new_fails(&p, "bos id 256");
  p = good;
  p.tokens = NULL;
  expect_new_fails(&p, "token array is NULL");
  v.type[3] = 7;
  expect_new_fails(&good, "token 3 has type 7");
  v.type[3] = LLM_TOKEN_NORMAL;
  v.mlen[0] = 2; /* "a " */
  expect_new_fails(&good, "merge 0");
  v.mlen[0] = 3;
  char err[256];
  llm_tokenizer *t = NULL;
  assert_int_equal(llm_tokenizer_new(&t, &good, err, sizeof err), 0);
  assert_int_equal(llm_tokenizer_n_tokens(t), 256);
  assert_int_equal(llm_tokenizer_bos(t), -1);
  llm_tokenizer_free(t);
  llm_tokenizer_free(NULL);
  /* A vocabulary lacking a byte's character: the byte becomes the unknown token, or nothing. */
  v.tok[0xFF][1] = 'X'; /* byte 0xFF's "\303\277" is now "\303X": no token has its character */
  p = good;
  p.unk_id = 'u';
  assert_int_equal(llm_tokenizer_new(&t, &p, err, sizeof err), 0);
  int32_t ids[4];
  assert_int_equal(llm_tokenize(t, "a\xff", 2, 1, ids, 4), 2);
  assert_int_equal(ids[1], 'u');
  llm_tokenizer_free(t);
  assert_int_equal(llm_tokenizer_new(&t, &good, err, sizeof err), 0);
  assert_int_equal(llm_tokenize(t, "a\xff", 2, 1, ids, 4), 1);
  llm_tokenizer_free(t);
}

/* ---- the streaming decoder --------------------------------------------------------------------------- */

static void test_stream(void **state) {
  (void)state;
  static vocab v;
  vocab_init(&v);
  /* "a" + the first two bytes of 🙂 (F0 9F 99 82) as one token, the rest byte by byte. */
  char piece[16];
  encode_bytes("a\xf0\x9f", 3, piece);
  int a_half = vocab_add(&v, piece, LLM_TOKEN_NORMAL);
  int ctl = vocab_add(&v, "<c>", LLM_TOKEN_CONTROL);
  llm_tokenizer *t = vocab_build(&v, "smollm");
  llm_detok *d = llm_detok_new(t, 0);
  assert_non_null(d);
  const char *out;
  size_t len;
  assert_int_equal(llm_detok_feed(d, a_half, &out, &len), 0);
  assert_int_equal(len, 1);
  assert_memory_equal(out, "a", 1);
  assert_int_equal(llm_detok_feed(d, 0x99, &out, &len), 0);
  assert_int_equal(len, 0);
  assert_int_equal(llm_detok_feed(d, ctl, &out, &len), 0); /* not rendered: nothing, and nothing lost */
  assert_int_equal(len, 0);
  assert_int_equal(llm_detok_feed(d, 99999, &out, &len), -1);
  assert_int_equal(llm_detok_feed(d, 0x82, &out, &len), 0);
  assert_int_equal(len, 4);
  assert_memory_equal(out, "\xf0\x9f\x99\x82", 4);
  /* é (C3 A9) split over two tokens, then a lead byte that the next byte cannot continue: passed on. */
  assert_int_equal(llm_detok_feed(d, 0xC3, &out, &len), 0);
  assert_int_equal(len, 0);
  assert_int_equal(llm_detok_feed(d, 0xA9, &out, &len), 0);
  assert_int_equal(len, 2);
  assert_memory_equal(out, "\xc3\xa9", 2);
  assert_int_equal(llm_detok_feed(d, 0xE2, &out, &len), 0);
  assert_int_equal(len, 0);
  assert_int_equal(llm_detok_feed(d, 'x', &out, &len), 0);
  assert_int_equal(len, 2);
  assert_memory_equal(out, "\xe2x", 2);
  /* E0 80 can never be well-formed (overlong): not held. */
  assert_int_equal(llm_detok_feed(d, 0xE0, &out, &len), 0);
  assert_int_equal(len, 0);
  assert_int_equal(llm_detok_feed(d, 0x80, &out, &len), 0);
  assert_int_equal(len, 2);
  /* An unfinished character at the end of the stream comes out of flush as it is. */
  assert_int_equal(llm_detok_feed(d, 0xF0, &out, &len), 0);
  assert_int_equal(len, 0);
  llm_detok_flush(d, &out, &len);
  assert_int_equal(len, 1);
  assert_memory_equal(out, "\xf0", 1);
  llm_detok_flush(d, &out, &len);
  assert_int_equal(len, 0);
  llm_detok_free(d);
  /* Rendering special tokens. */
  d = llm_detok_new(t, 1);
  assert_int_equal(llm_detok_feed(d, ctl, &out, &len), 0);
  assert_int_equal(len, 3);
  assert_memory_equal(out, "<c>", 3);
  llm_detok_free(d);
  llm_detok_free(NULL);
  llm_tokenizer_free(t);
}

/* Random texts from pieces that meet every rule (letters, digits, spaces, newlines, apostrophes,
 * multi-byte characters, stray and truncated UTF-8, special tokens), through a vocabulary with merges:
 * the count is what was written, and decoding gives back the text, at once and streamed. */
static void test_fuzz_round_trip(void **state) {
  (void)state;
  static vocab v;
  vocab_init(&v);
  static const char *const words[] = {"the", " the", "  ", "\n\n", "'s", "ab", "12", " \303\251t\303\251"};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) vocab_piece(&v, words[i], strlen(words[i]));
  vocab_add(&v, "<|s|>", LLM_TOKEN_CONTROL);
  vocab_add(&v, "<u>", LLM_TOKEN_USER_DEFINED);
  static const char *const parts[] = {"the", " ", "  ", "\n", "\t", "'", "s", "'s", "ab", "1", "2", "x",
                                      "\303\251", "\346\227\245", "\360\237\231\202", "\343\200\200",
                                      "\302\240", "\xff", "\x80", "\xe2\x82", "\xf0\x9f", "!", "...",
                                      "<|s|>", "<u>", "<|", "\331\243", "\0"};
  const size_t np = sizeof parts / sizeof parts[0];
  clait_rng rng = {0x70C0FFEE};
  for (const char *pre = "smollm"; pre != NULL; pre = strcmp(pre, "smollm") == 0 ? "gpt2" : NULL) {
    llm_tokenizer *t = vocab_build(&v, pre);
    llm_detok *d = llm_detok_new(t, 1);
    assert_non_null(d);
    for (int iter = 0; iter < 2000; iter++) {
      char text[256], out[512];
      size_t len = 0;
      int nparts = (int)(clait_next(&rng) % 24);
      for (int k = 0; k < nparts; k++) {
        size_t j = clait_next(&rng) % np;
        size_t pl = j == np - 1 ? 1 : strlen(parts[j]); /* the last part is a NUL byte */
        memcpy(text + len, parts[j], pl);
        len += pl;
      }
      int32_t ids[256];
      int parse_special = (int)(clait_next(&rng) & 1);
      int64_t n = llm_tokenize(t, text, len, parse_special, ids, 256);
      assert_true(n >= 0 && (size_t)n <= len);
      assert_int_equal(llm_detokenize(t, ids, n, 1, out, sizeof out), (int64_t)len);
      assert_memory_equal(out, text, len);
      size_t o = 0;
      for (int64_t i = 0; i < n; i++) {
        const char *p;
        size_t k;
        assert_int_equal(llm_detok_feed(d, ids[i], &p, &k), 0);
        memcpy(out + o, p, k);
        o += k;
      }
      const char *p;
      size_t k;
      llm_detok_flush(d, &p, &k);
      memcpy(out + o, p, k);
      o += k;
      assert_int_equal(o, len);
      assert_memory_equal(out, text, len);
    }
    llm_detok_free(d);
    llm_tokenizer_free(t);
  }
}

/* ---- the GGUF loader on small files written here ------------------------------------------------------ */

typedef struct gbuf {
  unsigned char p[16384];
  size_t n;
} gbuf;

static void g_put(gbuf *b, const void *x, size_t n) {
  assert_true(b->n + n <= sizeof b->p);
  memcpy(b->p + b->n, x, n);
  b->n += n;
}
static void g_u32(gbuf *b, uint32_t v) { g_put(b, &v, 4); } /* little-endian hosts only, as the suite */
static void g_u64(gbuf *b, uint64_t v) { g_put(b, &v, 8); }
static void g_str(gbuf *b, const char *s, size_t n) {
  g_u64(b, n);
  g_put(b, s, n);
}
static void g_kv_str(gbuf *b, const char *key, const char *val) {
  g_str(b, key, strlen(key));
  g_u32(b, CLAI_GGUF_STRING);
  g_str(b, val, strlen(val));
}

/* A GGUF v3 file with the tokenizer keys of a vocabulary of the 256 bytes and "ab", token 0 a control
 * token; without pre (NULL), with n_types types (-1: no types) and with or without the one merge "a b".
 * Returns the path. */
static const char *write_gguf(const char *model, const char *pre, int n_types, int with_merges) {
  static char path[1100];
  const char *dir = getenv("CLAI_TEST_TMP");
  snprintf(path, sizeof path, "%s/test-tokenizer.gguf", dir != NULL && *dir != '\0' ? dir : "/tmp");
  static gbuf b;
  b.n = 0;
  g_put(&b, "GGUF", 4);
  g_u32(&b, 3);
  g_u64(&b, 0);
  g_u64(&b, 3 + (pre != NULL) + (n_types >= 0) + (with_merges != 0) + 1);
  g_kv_str(&b, "general.architecture", "llama");
  g_kv_str(&b, "tokenizer.ggml.model", model);
  if (pre != NULL) g_kv_str(&b, "tokenizer.ggml.pre", pre);
  g_str(&b, "tokenizer.ggml.tokens", 21);
  g_u32(&b, CLAI_GGUF_ARRAY);
  g_u32(&b, CLAI_GGUF_STRING);
  g_u64(&b, 257);
  for (unsigned c = 0; c < 256; c++) {
    char ch = (char)c, enc[4];
    size_t n = encode_bytes(&ch, 1, enc);
    g_str(&b, enc, n);
  }
  g_str(&b, "ab", 2);
  if (n_types >= 0) {
    g_str(&b, "tokenizer.ggml.token_type", 25);
    g_u32(&b, CLAI_GGUF_ARRAY);
    g_u32(&b, CLAI_GGUF_INT32);
    g_u64(&b, (uint64_t)n_types);
    for (int i = 0; i < n_types; i++) g_u32(&b, i == 0 ? LLM_TOKEN_CONTROL : LLM_TOKEN_NORMAL);
  }
  if (with_merges) {
    g_str(&b, "tokenizer.ggml.merges", 21);
    g_u32(&b, CLAI_GGUF_ARRAY);
    g_u32(&b, CLAI_GGUF_STRING);
    g_u64(&b, 1);
    g_str(&b, "a b", 3);
  }
  g_str(&b, "tokenizer.ggml.eos_token_id", 27);
  g_u32(&b, CLAI_GGUF_UINT32);
  g_u32(&b, 0);
  while (b.n % 32 != 0) g_put(&b, "", 1);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(b.p, 1, b.n, f), b.n);
  assert_int_equal(fclose(f), 0);
  return path;
}

/* Loads the tokenizer of the file at path: it must fail with a message holding needle, or (needle NULL)
 * work, with token 0 of type type0. */
static void expect_gguf(const char *path, const char *needle, int type0) {
  char err[512];
  clai_gguf *g = NULL;
  if (clai_gguf_open(&g, path, err, sizeof err) != CLAI_OK) fail_msg("clai_gguf_open: %s", err);
  llm_tokenizer *t = llm_tokenizer_from_gguf(g, err, sizeof err);
  clai_gguf_close(g);
  if (needle == NULL) {
    if (t == NULL) fail_msg("llm_tokenizer_from_gguf: %s", err);
    int32_t ids[4];
    assert_int_equal(llm_tokenize(t, "ab1", 3, 1, ids, 4), 2);
    assert_int_equal(ids[0], 256);
    assert_int_equal(ids[1], '1');
    assert_int_equal(llm_tokenizer_eos(t), 0);
    assert_int_equal(llm_tokenizer_type(t, 0), type0);
    llm_tokenizer_free(t);
    return;
  }
  assert_null(t);
  if (strstr(err, needle) == NULL) fail_msg("message \"%s\" does not mention \"%s\"", err, needle);
}

static void test_gguf_loader(void **state) {
  (void)state;
  expect_gguf(write_gguf("gpt2", "smollm", 257, 1), NULL, LLM_TOKEN_CONTROL);
  expect_gguf(write_gguf("gpt2", NULL, -1, 1), NULL, LLM_TOKEN_NORMAL); /* "default"; all types normal */
  expect_gguf(write_gguf("llama", "smollm", 257, 1), "only \"gpt2\"", 0);
  expect_gguf(write_gguf("gpt2", "qwen2", 257, 1), "unknown pre-tokenizer \"qwen2\"", 0);
  expect_gguf(write_gguf("gpt2", "smollm", 256, 1), "token_type: 256 elements", 0);
  expect_gguf(write_gguf("gpt2", "smollm", 257, 0), "tokenizer.ggml.merges", 0);
  remove(write_gguf("gpt2", "smollm", 257, 1));
}

/* ---- SmolLM2's vocabulary (CLAI_LLM_MODEL) ------------------------------------------------------------ */

typedef struct ref_case {
  const char *prompt;
  int n_tokens;
  int32_t tokens[32];
  int n_greedy;
  int32_t greedy[48];
  const char *greedy_text;
} ref_case;

/* llama.cpp's tokens and greedy continuations for SmolLM2-135M-Instruct.Q4_1.gguf, from
 * /work/shared/peers/llama/smollm2-reference.jsonl (llama_ref, llama-cpp-python 0.3.36's llama.cpp). */
static const ref_case REF[] = {
    {"The capital of France is",
     5,
     {
      504, 3575, 282, 4649, 314,},
     48,
     {
      7042, 30, 198, 198, 504, 1797, 1918, 553, 253, 2155, 282, 4723, 216, 35, 33, 33, 2215, 701, 30, 198,
      198, 504, 1797, 1918, 553, 253, 2155, 282, 4723, 216, 35, 33, 33, 2215, 701, 30, 198, 198, 504, 1797,
      1918, 553, 253, 2155, 282, 4723, 216, 35,},
     " Paris.\n\nThe United States has a population of approximately 311 million people.\n\nTh"
     "e United States has a population of approximately 311 million people.\n\nThe United Stat"
     "es has a population of approximately 3"},
    {"Once upon a time, in a small village,",
     10,
     {
      6403, 1980, 253, 655, 28, 281, 253, 1165, 6560, 28,},
     48,
     {
      665, 436, 253, 9357, 1573, 267, 19341, 3365, 3906, 103, 266, 30, 3906, 103, 266, 436, 253, 4163, 282,
      9019, 284, 761, 719, 7956, 690, 260, 6560, 327, 800, 929, 30, 909, 761, 253, 1767, 10274, 28, 253,
      9077, 13253, 338, 856, 1363, 260, 2397, 282, 967, 617,},
     " there was a wise old wizard named Elwes. Elwes was a master of magic and had been watch"
     "ing over the village for many years. He had a special gift, a magical crystal that could"
     " change the lives of those who"},
    {"def fibonacci(n):",
     6,
     {
      1604, 3987, 46477, 24, 94, 727,},
     48,
     {
      472, 585, 304, 1758, 216, 32, 42, 448, 1003, 216, 33, 472, 1003, 304, 1672, 3987, 46477, 24, 94, 731,
      216, 33, 25, 198, 198, 3272, 24, 38572, 46477, 24, 33, 32, 1292, 907, 216, 35, 35, 35, 30, 35, 35, 35,
      30, 35, 35, 35, 30, 35,},
     "\n    if n == 0:\n        return 1\n    return n * fibonacci(n - 1)\n\nprint(fibonacci(1"
     "0)) # 333.333.333.3"},
    {"<|im_start|>user\nWhat is the boiling point of water?<|im_end|>\n<|im_start|>assistant\n",
     17,
     {
      1, 4093, 198, 1780, 314, 260, 16891, 1225, 282, 913, 47, 2, 198, 1, 520, 9531, 198,},
     48,
     {
      504, 16891, 1225, 282, 913, 314, 4723, 216, 33, 32, 32, 4742, 51, 365, 34, 33, 34, 4742, 54, 595, 669,
      314, 253, 4959, 3501, 282, 511, 2631, 28, 284, 357, 506, 253, 966, 282, 260, 2817, 1439, 5118, 645,
      913, 6756, 1690, 618, 2770, 351, 260, 2817,},
     "The boiling point of water is approximately 100\302\260C (212\302\260F). This is a funda"
     "mental property of all matter, and it's a result of the heat energy released when water "
     "molecules come into contact with the heat"},
    {"\303\234n\303\257c\303\266d\303\251, emoji \360\237\231\202 and \346\227\245\346\234\254"
     "\350\252\236 text:   multiple   spaces",
     26,
     {
      142, 246, 94, 25972, 83, 7466, 84, 2756, 28, 649, 33777, 47526, 284, 17097, 241, 115, 40993, 179, 120,
      248, 1694, 42, 256, 2701, 256, 5600,},
     48,
     {
      256, 826, 256, 260, 256, 637, 94, 23, 256, 284, 256, 637, 83, 23, 256, 3870, 256, 281, 256, 260, 256,
      637, 94, 23, 256, 284, 256, 637, 83, 23, 256, 3870, 256, 281, 256, 260, 256, 637, 94, 23, 256, 284,
      256, 637, 83, 23, 256, 3870,},
     "   between   the   'n'   and   'c'   characters   in   the   'n'   and   'c'   character"
     "s   in   the   'n'   and   'c'   characters"},
};

/* More of llama.cpp's ids (llama_ref from the same build, asked for one token after each prompt) on the
 * corners of the split: whitespace runs and newlines, Unicode whitespace (U+3000, NBSP, NEL, U+2028,
 * U+202F, U+205F) and U+001F, which is not, contractions, digits of other scripts (Nd, Nl, No), special
 * tokens back to back and one left unfinished, emoji sequences, a combining mark, BOM, long words, and
 * bytes 0x04 and 0x06, which SmolLM2 cannot encode (both drop them). Invalid UTF-8 is not among them:
 * llama.cpp turns each bad byte into U+FFFD, this tokenizer keeps the byte (see tokenizer.h). */
typedef struct extra_case {
  const char *prompt;
  int n_tokens;
  int32_t tokens[40];
} extra_case;

static const extra_case EXTRA[] = {
    {"a\n\nb",
     4, {81, 198, 198, 82}},
    {"x \t\n y",
     5, {104, 216, 197, 198, 329}},
    {"end   ",
     2, {486, 333}},
    {"  hi",
     2, {216, 15876}},
    {"IT'S 'x' rock'n'roll don't",
     13, {2901, 23, 67, 637, 104, 23, 4022, 23, 94, 23, 2197, 1326, 982}},
    {"pi=3.14159 and 1,000,000",
     20, {9020, 45, 35, 30, 33, 36, 33, 37, 41, 284, 216, 33, 28, 32, 32, 32, 28, 32, 32, 32}},
    {"n\331\243\331\244 \302\275",
     7, {94, 164, 113, 164, 114, 216, 16738}},
    {"a\343\200\200b c\302\240\302\240d",
     8, {81, 12109, 218, 82, 265, 15442, 15442, 84}},
    {"a \037b",
     4, {81, 216, 215, 82}},
    {"Hi!!! ...?? (x)",
     7, {26843, 29646, 4563, 16693, 365, 104, 25}},
    {"def f():\n    return 1\n\n\n",
     8, {1604, 275, 3734, 472, 1003, 216, 33, 16506}},
    {"<|im_start|><|im_end|><|endoftext|>x<|im_start",
     9, {1, 2, 0, 104, 44, 108, 306, 79, 3738}},
    {"\360\237\221\250\342\200\215\360\237\221\251\342\200\215\360\237\221\247 \360"
     "\237\207\253\360\237\207\267",
     19, {10813, 235, 118, 321, 231, 10813, 235, 119, 321, 231, 10813, 235, 117, 15107, 225, 121, 10813, 225,
      132}},
    {"e\314\201 \357\273\277BOM zero\342\200\213width",
     13, {85, 151, 219, 216, 186, 136, 140, 50, 9232, 6708, 321, 229, 6930}},
    {"\346\227\245\346\234\254\350\252\236\343\201\247\343\201\231 \355\225\234\352"
     "\265\255\354\226\264 \330\247\331\204\330\271\330\261\330\250\331\212\330\251",
     24, {23274, 115, 40993, 179, 120, 248, 7365, 117, 39958, 216, 33085, 246, 181, 130, 251, 183, 240, 129,
      27819, 34966, 20602, 31462, 23339, 43463}},
    {"\t\t\tindented\r\n\r\nCRLF",
     9, {1656, 197, 526, 6574, 7209, 198, 9088, 60, 54}},
    {"'s's'll 'LL",
     5, {506, 506, 3060, 637, 16421}},
    {"x\302\205y\342\200\250z",
     7, {104, 141, 223, 105, 321, 118, 106}},
    {"\342\205\240\342\205\241 roman \342\221\240",
     11, {173, 223, 250, 173, 223, 111, 41800, 216, 173, 235, 250}},
    {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA abababababababababa"
     "babababababababababababababababababababab",
     38, {44843, 44843, 44843, 44843, 44843, 44843, 44843, 26024, 453, 369, 369, 369, 369, 369, 369, 369,
      369, 369, 369, 369, 369, 369, 369, 369, 369, 369, 369, 369, 369, 369, 369, 369, 369, 369, 369, 369,
      369, 369}},
    {"   \n   \n",
     3, {333, 472, 198}},
    {"$100.00 & 50% off!!",
     14, {20, 33, 32, 32, 30, 32, 32, 1456, 216, 37, 32, 21, 767, 10095}},
    {"x\342\200\257y\342\201\237z",
     7, {104, 321, 124, 105, 32571, 249, 106}},
    {"caf\303\251 ok \004\006x",
     6, {83, 1939, 2756, 10907, 216, 104}},
};

static llm_tokenizer *smollm2;

static int first_difference(const int32_t *a, int64_t na, const int32_t *b, int nb) {
  int i = 0;
  while (i < na && i < nb && a[i] == b[i]) i++;
  return i;
}

/* The SmolLM2 tokenizer from CLAI_LLM_MODEL, loaded once; NULL (after a "# skipped" line) when unset. */
static llm_tokenizer *model_tokenizer(void) {
  const char *path = getenv("CLAI_LLM_MODEL");
  if (path == NULL || *path == '\0') {
    printf("# skipped: CLAI_LLM_MODEL not set\n");
    return NULL;
  }
  if (smollm2 != NULL) return smollm2;
  char err[512];
  clai_gguf *g = NULL;
  if (clai_gguf_open(&g, path, err, sizeof err) != CLAI_OK) fail_msg("clai_gguf_open %s: %s", path, err);
  smollm2 = llm_tokenizer_from_gguf(g, err, sizeof err);
  clai_gguf_close(g);
  if (smollm2 == NULL) fail_msg("llm_tokenizer_from_gguf %s: %s", path, err);
  return smollm2;
}

static void test_smollm2_reference(void **state) {
  (void)state;
  llm_tokenizer *t = model_tokenizer();
  if (t == NULL) return;
  assert_int_equal(llm_tokenizer_n_tokens(t), 49152);
  assert_int_equal(llm_tokenizer_bos(t), 1);
  assert_int_equal(llm_tokenizer_eos(t), 2);
  for (size_t c = 0; c < sizeof REF / sizeof REF[0]; c++) {
    const ref_case *r = &REF[c];
    int32_t ids[64];
    int64_t n = llm_tokenize(t, r->prompt, strlen(r->prompt), 1, ids, 64);
    if (n != r->n_tokens || memcmp(ids, r->tokens, (size_t)n * sizeof ids[0]) != 0) {
      char got[512] = "";
      for (int64_t i = 0; i < n && i < 64 && strlen(got) < 480; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), " %d", ids[i]);
      fail_msg("prompt %zu \"%s\": %lld ids (want %d):%s", c, r->prompt, (long long)n, r->n_tokens, got);
    }
    /* The prompt decodes back to itself with the special tokens rendered, and without them loses exactly
     * those. */
    char out[1024];
    assert_int_equal(llm_detokenize(t, ids, n, 1, out, sizeof out), (int64_t)strlen(r->prompt));
    assert_string_equal(out, r->prompt);
    /* The greedy continuation decodes to llama.cpp's text, all at once and streamed token by token. */
    int64_t len = llm_detokenize(t, r->greedy, r->n_greedy, 0, out, sizeof out);
    assert_int_equal(len, (int64_t)strlen(r->greedy_text));
    assert_string_equal(out, r->greedy_text);
    llm_detok *d = llm_detok_new(t, 0);
    assert_non_null(d);
    size_t o = 0;
    for (int i = 0; i < r->n_greedy; i++) {
      const char *p;
      size_t k;
      assert_int_equal(llm_detok_feed(d, r->greedy[i], &p, &k), 0);
      assert_true(o + k < sizeof out);
      memcpy(out + o, p, k);
      o += k;
    }
    const char *p;
    size_t k;
    llm_detok_flush(d, &p, &k);
    assert_int_equal(k, 0);
    llm_detok_free(d);
    assert_int_equal(o, strlen(r->greedy_text));
    assert_memory_equal(out, r->greedy_text, o);
  }
  for (size_t c = 0; c < sizeof EXTRA / sizeof EXTRA[0]; c++) {
    const extra_case *r = &EXTRA[c];
    int32_t ids[64];
    int64_t n = llm_tokenize(t, r->prompt, strlen(r->prompt), 1, ids, 64);
    if (n != r->n_tokens || memcmp(ids, r->tokens, (size_t)n * sizeof ids[0]) != 0)
      fail_msg("extra prompt %zu \"%s\": %lld ids (want %d), first difference at %d", c, r->prompt, (long long)n,
               r->n_tokens, first_difference(ids, n, r->tokens, r->n_tokens));
  }
  /* The ChatML prompt without parse_special: the control texts are plain text, and more ids. */
  const char *chat = REF[3].prompt;
  int32_t ids[64];
  int64_t n = llm_tokenize(t, chat, strlen(chat), 0, ids, 64);
  assert_true(n > REF[3].n_tokens);
  for (int64_t i = 0; i < n && i < 64; i++) assert_true(ids[i] > 16);
}

/* decode(encode(text)) == text on SmolLM2's vocabulary, the emoji streamed in pieces. */
static void test_smollm2_round_trip(void **state) {
  (void)state;
  llm_tokenizer *t = model_tokenizer();
  if (t == NULL) return;
  static const char *const texts[] = {
      "Hello, world!",
      "  leading and trailing spaces  ",
      "tabs\tand\nnewlines\r\n\n\nand a form feed\f.",
      "Numbers: 3.14159, 1,000,000 and 0x7fffffff; 2024-12-04T19:33:00Z",
      "Contractions: I'm, you're, we've, they'll, she'd, it's, don't; IT'S",
      "Fran\303\247ais, na\303\257ve, \303\274ber, \316\261\316\262\316\263, \320\277\321\200\320\270\320\262\320\265\321\202",
      "\346\227\245\346\234\254\350\252\236\343\201\247\343\201\231 \355\225\234\352\265\255\354\226\264 "
      "\330\247\331\204\330\271\330\261\330\250\331\212\330\251 \340\244\271\340\244\277\340\244\202\340\244\246\340\245\200",
      "Emoji: \360\237\231\202\360\237\221\215\360\237\217\275 \360\237\221\250\342\200\215\360\237\221\251\342\200\215\360\237\221\247 and flags \360\237\207\253\360\237\207\267",
      "e\314\201 (combining acute), \357\273\277BOM, zero\342\200\213width, nbsp\302\240here",
      "for (int i = 0; i < n; i++) {\n    x[i] += y[i] * 2;\n}\n",
      "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
      "<|endoftext|><|endoftext|><repo_name>x<file_sep>",
      "",
  };
  for (size_t c = 0; c < sizeof texts / sizeof texts[0]; c++) {
    const char *s = texts[c];
    size_t len = strlen(s);
    int32_t ids[512];
    int64_t n = llm_tokenize(t, s, len, 1, ids, 512);
    assert_true(n >= 0 && n <= 512);
    char out[2048];
    int64_t m = llm_detokenize(t, ids, n, 1, out, sizeof out);
    if (m != (int64_t)len || memcmp(out, s, len) != 0) fail_msg("round trip of \"%s\": \"%s\"", s, out);
    /* Streamed, the output is the same bytes, each piece ending on a character boundary. */
    llm_detok *d = llm_detok_new(t, 1);
    assert_non_null(d);
    size_t o = 0;
    for (int64_t i = 0; i < n; i++) {
      const char *p;
      size_t k;
      assert_int_equal(llm_detok_feed(d, ids[i], &p, &k), 0);
      if (k > 0) assert_true(((unsigned char)p[k - 1] & 0xC0) != 0xC0); /* no lead byte left dangling */
      memcpy(out + o, p, k);
      o += k;
    }
    llm_detok_free(d);
    assert_int_equal(o, len);
    assert_memory_equal(out, s, len);
  }
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A prompt of about 512 tokens (English, code, Unicode) must tokenize well under 10 ms. */
static void test_smollm2_speed(void **state) {
  (void)state;
  llm_tokenizer *t = model_tokenizer();
  if (t == NULL) return;
  static const char para[] =
      "The quick brown fox jumps over the lazy dog, while 42 programmers debate whether tabs or spaces are "
      "better.   \303\234n\303\257c\303\266d\303\251 \346\227\245\346\234\254\350\252\236 \360\237\231\202\n"
      "def f(x):\n    return x * 2  # doubled\n";
  char text[8192] = "";
  int32_t ids[1024];
  int64_t n = 0;
  while (n < 512) {
    strcat(text, para);
    n = llm_tokenize(t, text, strlen(text), 1, ids, 1024);
  }
  double best = 1e9;
  for (int rep = 0; rep < 20; rep++) {
    double t0 = now_ms();
    assert_int_equal(llm_tokenize(t, text, strlen(text), 1, ids, 1024), n);
    double dt = now_ms() - t0;
    if (dt < best) best = dt;
  }
  printf("# tokenizing %lld tokens (%zu bytes) took %.3f ms (best of 20)\n", (long long)n, strlen(text), best);
  assert_true(best < 10.0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CLAIT_TIMED(test_split_contractions),
      CLAIT_TIMED(test_split_digits),
      CLAIT_TIMED(test_split_letters),
      CLAIT_TIMED(test_split_punctuation),
      CLAIT_TIMED(test_split_whitespace),
      CLAIT_TIMED(test_bpe_ranks),
      CLAIT_TIMED(test_special_tokens),
      CLAIT_TIMED(test_bad_input),
      CLAIT_TIMED(test_bad_vocabulary),
      CLAIT_TIMED(test_stream),
      CLAIT_TIMED(test_fuzz_round_trip),
      CLAIT_TIMED(test_gguf_loader),
      CLAIT_TIMED(test_smollm2_reference),
      CLAIT_TIMED(test_smollm2_round_trip),
      CLAIT_TIMED(test_smollm2_speed),
  };
  int rc = CLAIT_MAIN("tokenizer", tests, 0);
  llm_tokenizer_free(smollm2);
  return rc;
}
