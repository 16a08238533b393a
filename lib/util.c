/* util.c - hashing, checked size arithmetic, time and strings. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* A 64-bit hash in the style of the splitmix/murmur finalisers: mix eight bytes at a time, then avalanche.
 * Not cryptographic; it guards cache entries against damage and against being read for another key. */
static uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

uint64_t clai__hash64(const void *data, size_t len, uint64_t seed) {
  const unsigned char *p = data;
  uint64_t h = mix64(seed ^ 0x9e3779b97f4a7c15ULL ^ (uint64_t)len);
  while (len >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = mix64(h ^ mix64(w + 0x632be59bd9b4e019ULL));
    p += 8;
    len -= 8;
  }
  uint64_t tail = 0;
  for (size_t i = 0; i < len; i++) tail |= (uint64_t)p[i] << (8 * i);
  h = mix64(h ^ mix64(tail ^ 0xd6e8feb86659fd93ULL));
  return h;
}

double clai__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int clai__mul_ok(uint64_t a, uint64_t b, uint64_t *out) {
  if (a != 0 && b > UINT64_MAX / a) return 0;
  *out = a * b;
  return 1;
}

int clai__add_ok(uint64_t a, uint64_t b, uint64_t *out) {
  if (b > UINT64_MAX - a) return 0;
  *out = a + b;
  return 1;
}

int clai__contains_ci(const char *haystack, const char *needle) {
  size_t n = strlen(needle);
  if (n == 0) return 1;
  for (; *haystack; haystack++) {
    size_t i = 0;
    while (i < n && haystack[i] && tolower((unsigned char)haystack[i]) == tolower((unsigned char)needle[i])) i++;
    if (i == n) return 1;
  }
  return 0;
}

void clai__appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...) {
  if (*len >= cap) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  *len += (size_t)n;
  if (*len >= cap) *len = cap - 1;
}
