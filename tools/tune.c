/* tune.c - `clai tune`: runs clai_tune() on the chosen device and reports what it stored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "clai.h"

static void print_line(void *user, const char *line) {
  (void)user;
  printf("  %s\n", line);
  fflush(stdout);
}

static void usage(FILE *f) {
  fprintf(f, "usage: clai tune [--sizes N|MxNxK,...] [--rounds R] [--max-candidates N]\n"
             "  Searches the matmul kernel parameters of the chosen device (CLAI_DEVICE picks another),\n"
             "  checks every candidate against a reference, times it on the shapes, and stores the winner\n"
             "  in the kernel cache directory, where later contexts on this device find it. A few minutes;\n"
             "  --max-candidates stops after N candidates (the starting point included) with the best so far.\n");
}

int clai_tool_tune(int argc, char **argv) {
  int64_t shapes[16][3];
  clai_tune_params p;
  memset(&p, 0, sizeof p);
  p.progress = print_line;
  for (int i = 0; i < argc; i++) {
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(argv[i], "--sizes") == 0 && val != NULL) {
      p.nshapes = bench_parse_shapes(val, shapes, 16);
      if (p.nshapes <= 0) {
        fprintf(stderr, "clai tune: bad --sizes '%s'\n", val);
        return 2;
      }
      p.shapes = (const int64_t(*)[3])shapes;
      i++;
    } else if (strcmp(argv[i], "--rounds") == 0 && val != NULL) {
      p.rounds = atoi(val);
      if (p.rounds < 1 || p.rounds > 10) {
        fprintf(stderr, "clai tune: --rounds must be 1..10\n");
        return 2;
      }
      i++;
    } else if (strcmp(argv[i], "--max-candidates") == 0 && val != NULL) {
      p.max_candidates = atoi(val);
      if (p.max_candidates < 1 || p.max_candidates > 1000) {
        fprintf(stderr, "clai tune: --max-candidates must be 1..1000\n");
        return 2;
      }
      i++;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }
  char err[4096];
  clai_context *ctx = NULL;
  clai_status st = clai_context_init_ex(&ctx, NULL, err, sizeof err);
  if (st != CLAI_OK) {
    fprintf(stderr, "clai tune: %s: %s\n", clai_status_name(st), err);
    return 1;
  }
  clai_device_info d;
  clai_context_device_info(ctx, -1, &d);
  printf("tuning matmul on %s / %s (candidates: family and parameters, score: geometric mean GFLOP/s)\n",
         d.platform, d.name);
  char report[512];
  st = clai_tune(ctx, &p, report, sizeof report);
  if (st != CLAI_OK) {
    fprintf(stderr, "clai tune: %s: %s\n", clai_status_name(st), clai_errmsg(ctx));
    clai_context_free(ctx);
    return 1;
  }
  printf("stored in %s: %s\n", clai_context_cache_dir(ctx), report);
  clai_context_free(ctx);
  return 0;
}
