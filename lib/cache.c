/* cache.c - the on-disk cache of program binaries.
 *
 * An entry is one file named after a 128-bit hash of its key text (libclai version, program, build
 * options, device, device/driver/platform versions, source hash):
 *
 *   offset 0   8 bytes  magic "CLAIBIN1"
 *          8   8 bytes  key hash, seed 1     } the key the entry was written for: a file copied or renamed
 *         16   8 bytes  key hash, seed 2     } to another key's name is "foreign" and rejected
 *         24   8 bytes  payload length
 *         32   8 bytes  payload checksum
 *         40   payload  (the device's program binary)
 *
 * Integers are little-endian as written by this machine; an entry from a machine of the other byte order
 * fails the magic/hash check and is rebuilt. Entries are written to a unique temporary file in the same
 * directory and renamed into place (rename(2) is atomic within a file system), so a reader sees a whole
 * entry or none. Nothing read from the cache is trusted before its length and checksum agree. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define MAGIC "CLAIBIN1"
#define HEADER_SIZE 40
#define MAX_ENTRY ((uint64_t)1 << 32) /* no program binary is 4 GiB; a larger length is damage */

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p != NULL) memcpy(p, s, n);
  return p;
}

static char *join(const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  char *p = malloc(na + nb + 2);
  if (p == NULL) return NULL;
  memcpy(p, a, na);
  p[na] = '/';
  memcpy(p + na + 1, b, nb + 1);
  return p;
}

char *clai__cache_dir_resolve(const clai_context_params *params) {
  if (params->cache < 0) return NULL;
  if (params->cache == 0) {
    const char *on = getenv("CLAI_CACHE");
    if (on != NULL && strcmp(on, "0") == 0) return NULL;
  }
  if (params->cache_dir != NULL && params->cache_dir[0] != '\0') return dup_str(params->cache_dir);
  const char *s = getenv("CLAI_CACHE_DIR");
  if (s != NULL && s[0] != '\0') return dup_str(s);
  s = getenv("XDG_CACHE_HOME");
  if (s != NULL && s[0] == '/') return join(s, "clai");
  s = getenv("HOME");
  if (s != NULL && s[0] != '\0') return join(s, ".cache/clai");
  return NULL;
}

static void key_hashes(const char *key, uint64_t h[2]) {
  size_t n = strlen(key);
  h[0] = clai__hash64(key, n, 1);
  h[1] = clai__hash64(key, n, 2);
}

char *clai__cache_path(const char *dir, const char *key) {
  uint64_t h[2];
  key_hashes(key, h);
  char name[48];
  snprintf(name, sizeof name, "%016llx%016llx.clbin", (unsigned long long)h[0], (unsigned long long)h[1]);
  return join(dir, name);
}

static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

int clai__cache_load(const char *dir, const char *key, unsigned char **data, size_t *len) {
  *data = NULL;
  *len = 0;
  char *path = clai__cache_path(dir, key);
  if (path == NULL) return 0;
  FILE *f = fopen(path, "rb");
  free(path);
  if (f == NULL) return 0;
  int result = -1;
  unsigned char hdr[HEADER_SIZE];
  unsigned char *buf = NULL;
  uint64_t h[2];
  key_hashes(key, h);
  if (fread(hdr, 1, HEADER_SIZE, f) != HEADER_SIZE) goto done;
  if (memcmp(hdr, MAGIC, 8) != 0 || get_u64(hdr + 8) != h[0] || get_u64(hdr + 16) != h[1]) goto done;
  uint64_t n = get_u64(hdr + 24);
  if (n == 0 || n > MAX_ENTRY) goto done;
  /* The length must be what follows the header, checked before the allocation: a damaged length would
   * otherwise allocate up to MAX_ENTRY bytes for a file that holds a few. */
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || st.st_size < HEADER_SIZE || (uint64_t)st.st_size - HEADER_SIZE != n) goto done;
  buf = malloc((size_t)n);
  if (buf == NULL) goto done;
  if (fread(buf, 1, (size_t)n, f) != (size_t)n) goto done;
  if (fgetc(f) != EOF) goto done; /* trailing bytes: not an entry this code wrote */
  if (clai__hash64(buf, (size_t)n, 3) != get_u64(hdr + 32)) goto done;
  *data = buf;
  *len = (size_t)n;
  buf = NULL;
  result = 1;
done:
  free(buf);
  fclose(f);
  return result;
}

/* mkdir -p for the cache directory (mode 0700: the cache is per user). */
static int make_dirs(const char *dir) {
  char *p = dup_str(dir);
  if (p == NULL) return -1;
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    if (mkdir(p, 0700) != 0 && errno != EEXIST) {
      free(p);
      return -1;
    }
    *s = '/';
  }
  int rc = (mkdir(p, 0700) == 0 || errno == EEXIST) ? 0 : -1;
  free(p);
  return rc;
}

int clai__cache_store(const char *dir, const char *key, const unsigned char *data, size_t len) {
  if (len == 0 || make_dirs(dir) != 0) return -1;
  char *path = clai__cache_path(dir, key);
  if (path == NULL) return -1;
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 32);
  if (tmp == NULL) {
    free(path);
    return -1;
  }
  snprintf(tmp, plen + 32, "%s.tmp.XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    free(tmp);
    free(path);
    return -1;
  }
  uint64_t h[2];
  key_hashes(key, h);
  unsigned char hdr[HEADER_SIZE];
  memcpy(hdr, MAGIC, 8);
  put_u64(hdr + 8, h[0]);
  put_u64(hdr + 16, h[1]);
  put_u64(hdr + 24, (uint64_t)len);
  put_u64(hdr + 32, clai__hash64(data, len, 3));
  int ok = 1;
  const unsigned char *parts[2] = {hdr, data};
  size_t sizes[2] = {HEADER_SIZE, len};
  for (int i = 0; i < 2 && ok; i++) {
    size_t off = 0;
    while (off < sizes[i]) {
      ssize_t w = write(fd, parts[i] + off, sizes[i] - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        ok = 0;
        break;
      }
      off += (size_t)w;
    }
  }
  if (close(fd) != 0) ok = 0;
  if (ok && rename(tmp, path) != 0) ok = 0;
  if (!ok) unlink(tmp);
  free(tmp);
  free(path);
  return ok ? 0 : -1;
}
