/* unicode-tables.h - the Unicode classes of the GPT-2 pre-tokenizer's regex (\p{L}, \p{N}, \s), from the
 * generated unicode-tables.c (build-aux/gen-unicode-tables.py writes it from Python's unicodedata). */
#ifndef CLAI_EXAMPLE_UNICODE_TABLES_H
#define CLAI_EXAMPLE_UNICODE_TABLES_H

#include <stddef.h>
#include <stdint.h>

enum {
  LLM_UCD_OTHER = 0,  /* anything else: punctuation, symbols, marks, controls, unassigned */
  LLM_UCD_LETTER = 1, /* \p{L}: Lu Ll Lt Lm Lo */
  LLM_UCD_NUMBER = 2, /* \p{N}: Nd Nl No */
  LLM_UCD_SPACE = 3,  /* \s: Unicode White_Space */
};

/* The class of codepoint cp (any value; beyond U+10FFFF is LLM_UCD_OTHER). A binary search over ~800
 * ranges: callers classify ASCII themselves. */
int llm_ucd_class(uint32_t cp);

/* The Unicode version the tables come from, e.g. "14.0.0". */
extern const char llm_ucd_version[];

#endif
