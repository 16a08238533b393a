/* bench-train.c - `clai bench train`: training speed of the Fashion-MNIST models against PyTorch, measured
 * in the same run.
 *
 * Both sides run as child processes with the same recipe (model, batch 128, Adam, the same training
 * samples): libclai as `clai train --json` (this executable), PyTorch as the peer script given with --peer
 * (fmnist_torch.py: `--json`, `train_sps` per epoch). They take turns, round after round, so a machine whose
 * speed drifts (a shared VM) slows both alike; the table shows every round and the best and median of
 * each side. Only training samples per second are compared; each side's own accuracy is printed for the
 * record. Without --peer, or without python3 and torch, only libclai is measured. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define MAX_ROUNDS 16
#define MAX_EPOCHS 64

typedef struct side {
  double sps[MAX_ROUNDS * MAX_EPOCHS];
  int n;
  double acc; /* test accuracy of the last epoch of the last round */
} side;

/* Runs argv with extra environment (NAME=VALUE strings, NULL-terminated), captures stdout into a malloc'd
 * string (stderr passes through, so progress stays visible). Returns NULL when it cannot run or fails. */
static char *capture(char *const argv[], char *const env[]) {
  int fd[2];
  if (pipe(fd) != 0) return NULL;
  pid_t pid = fork();
  if (pid < 0) {
    close(fd[0]), close(fd[1]);
    return NULL;
  }
  if (pid == 0) {
    dup2(fd[1], 1);
    close(fd[0]), close(fd[1]);
    for (int i = 0; env != NULL && env[i] != NULL; i++) putenv(env[i]);
    execvp(argv[0], argv);
    fprintf(stderr, "clai bench train: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(fd[1]);
  size_t len = 0, cap = 1 << 16;
  char *out = malloc(cap);
  ssize_t got;
  while (out != NULL && (got = read(fd[0], out + len, cap - len - 1)) > 0) {
    len += (size_t)got;
    if (cap - len < 4096) {
      char *bigger = realloc(out, cap * 2);
      if (bigger == NULL) free(out);
      out = bigger, cap *= 2;
    }
  }
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (out == NULL) return NULL;
  out[len] = '\0';
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    free(out);
    return NULL;
  }
  return out;
}

/* Every "key": number in a JSON text, in order (the documents of both sides are flat enough for this). */
static int numbers(const char *json, const char *key, double *out, int cap) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  int n = 0;
  for (const char *p = strstr(json, pat); p != NULL && n < cap; p = strstr(p + 1, pat))
    out[n++] = strtod(p + strlen(pat), NULL);
  return n;
}

static int add_run(side *s, const char *json) {
  double v[MAX_EPOCHS], a[MAX_EPOCHS];
  int n = numbers(json, "train_sps", v, MAX_EPOCHS), na = numbers(json, "test_acc", a, MAX_EPOCHS);
  for (int i = 0; i < n && s->n < MAX_ROUNDS * MAX_EPOCHS; i++) s->sps[s->n++] = v[i];
  if (na > 0) s->acc = a[na - 1];
  return n;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
static double median(const side *s) {
  double t[MAX_ROUNDS * MAX_EPOCHS];
  memcpy(t, s->sps, (size_t)s->n * sizeof t[0]);
  qsort(t, (size_t)s->n, sizeof t[0], cmp);
  return s->n % 2 ? t[s->n / 2] : (t[s->n / 2 - 1] + t[s->n / 2]) / 2;
}
static double best(const side *s) {
  double b = 0;
  for (int i = 0; i < s->n; i++) b = s->sps[i] > b ? s->sps[i] : b;
  return b;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: clai bench train [--model mlp|cnn] [--peer PATH] [--rounds R] [--epochs E] [--train-limit N]\n"
          "                        [--torch-threads T] [--python PYTHON]\n"
          "  Training samples/s of libclai (clai train) and of PyTorch (the peer script PATH, e.g.\n"
          "  fmnist_torch.py) with the same model, batch 128 and Adam, taking turns for R rounds (default 3) of\n"
          "  E epochs each (default 1) on the first N training samples (default: mlp all 60000, cnn 12800).\n"
          "  PyTorch runs with T threads (default: mlp 1, cnn 2 with OMP_WAIT_POLICY=PASSIVE and\n"
          "  OPENBLAS_THREAD_TIMEOUT=4, its best settings on a 2-core machine), under PYTHON (default python3).\n"
          "  PyTorch's OpenBLAS, when it uses one, runs the best kernels it has for this CPU, chosen by the bench,\n"
          "  unless OPENBLAS_CORETYPE is set.\n");
}

int bench_train(int argc, char **argv) {
  const char *model = "mlp", *peer = NULL, *python = "python3";
  int rounds = 3, epochs = 1, limit = -1, threads = -1;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (v != NULL && strcmp(a, "--model") == 0) {
      model = v, i++;
    } else if (v != NULL && strcmp(a, "--peer") == 0) {
      peer = v, i++;
    } else if (v != NULL && strcmp(a, "--python") == 0) {
      python = v, i++;
    } else if (v != NULL && strcmp(a, "--rounds") == 0) {
      rounds = atoi(v), i++;
    } else if (v != NULL && strcmp(a, "--epochs") == 0) {
      epochs = atoi(v), i++;
    } else if (v != NULL && strcmp(a, "--train-limit") == 0) {
      limit = atoi(v), i++;
    } else if (v != NULL && strcmp(a, "--torch-threads") == 0) {
      threads = atoi(v), i++;
    } else {
      fprintf(stderr, "clai bench train: unknown or incomplete option '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  const int cnn = strcmp(model, "cnn") == 0;
  if (!cnn && strcmp(model, "mlp") != 0) {
    fprintf(stderr, "clai bench train: unknown model '%s' (mlp or cnn)\n", model);
    return 2;
  }
  if (rounds < 1 || rounds > MAX_ROUNDS || epochs < 1 || epochs > MAX_EPOCHS || limit == 0 || limit < -1) {
    fprintf(stderr, "clai bench train: --rounds 1..%d, --epochs 1..%d, --train-limit at least 1\n", MAX_ROUNDS,
            MAX_EPOCHS);
    return 2;
  }
  /* Before any child starts: both inherit the environment (capture() adds to it), and PyTorch's OpenBLAS
   * reads OPENBLAS_CORETYPE when it is loaded. */
  bench_openblas_choose_kernels();
  if (limit < 0) limit = cnn ? 12800 : 60000;
  if (threads < 1) threads = cnn ? 2 : 1;

  char self[4096];
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  if (sl <= 0) {
    fprintf(stderr, "clai bench train: cannot find this executable (/proc/self/exe)\n");
    return 1;
  }
  self[sl] = '\0';
  char ep[16], lim[16], thr[16];
  snprintf(ep, sizeof ep, "%d", epochs);
  snprintf(lim, sizeof lim, "%d", limit);
  snprintf(thr, sizeof thr, "%d", threads);
  char *ours[] = {self, "train", "--model", (char *)model, "--epochs", ep, "--train-limit", lim, "--json", NULL};
  char *theirs[] = {(char *)python, (char *)peer, "--model", (char *)model, "--threads", thr, "--epochs", ep,
                    "--train-limit", lim, "--infer-reps", "1", "--json", NULL};
  /* PyTorch's best setting for two threads on two cores: its OpenMP and OpenBLAS pools otherwise spin
   * against each other */
  char *cnn_env[] = {"OMP_WAIT_POLICY=PASSIVE", "OPENBLAS_THREAD_TIMEOUT=4", NULL};
  char *const *peer_env = threads > 1 ? cnn_env : NULL;

  side us, them;
  memset(&us, 0, sizeof us), memset(&them, 0, sizeof them);
  int peer_ok = peer != NULL;
  printf("clai bench train: model %s, %d training samples, batch 128, Adam; %d round(s) of %d epoch(s) each side\n",
         model, limit, rounds, epochs);
  if (peer == NULL) printf("(no --peer: libclai only; give --peer PATH to PyTorch's fmnist_torch.py)\n");
  else printf("PyTorch, where its BLAS is OpenBLAS: %s\n", bench_openblas_kernels());
  printf("%6s %14s %14s %8s\n", "round", "libclai s/s", "PyTorch s/s", "ratio");
  fflush(stdout);
  for (int r = 1; r <= rounds; r++) {
    int u0 = us.n, t0 = them.n;
    char *o = capture(ours, NULL);
    if (o == NULL || add_run(&us, o) == 0) {
      fprintf(stderr, "clai bench train: `clai train` failed\n");
      free(o);
      return 1;
    }
    free(o);
    if (peer_ok) {
      char *p = capture(theirs, peer_env);
      if (p == NULL || add_run(&them, p) == 0) {
        fprintf(stderr, "clai bench train: the peer %s failed (python3 with torch and numpy needed); "
                        "going on with libclai only\n", peer);
        peer_ok = 0;
      }
      free(p);
    }
    for (int e = 0; e < epochs; e++) {
      double a = us.sps[u0 + e], b = them.n > t0 + e ? them.sps[t0 + e] : 0;
      if (b > 0)
        printf("%4d.%-1d %14.1f %14.1f %7.2fx\n", r, e + 1, a, b, a / b);
      else
        printf("%4d.%-1d %14.1f %14s %8s\n", r, e + 1, a, "-", "");
    }
    fflush(stdout);
  }
  printf("%6s %14.1f %14.1f", "best", best(&us), them.n ? best(&them) : 0.0);
  if (them.n) printf(" %7.2fx", best(&us) / best(&them));
  printf("\n%6s %14.1f %14.1f", "median", median(&us), them.n ? median(&them) : 0.0);
  if (them.n) printf(" %7.2fx", median(&us) / median(&them));
  printf("\ntest accuracy after the last round: libclai %.4f", us.acc);
  if (them.n) printf(", PyTorch %.4f (PyTorch with %d thread(s))", them.acc, threads);
  printf("\n");
  return 0;
}
