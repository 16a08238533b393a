/* test-threads-cold.c - the first contexts of a process may be created from several threads at once.
 *
 * tests/test-threads.c creates a context before its threads start, so device discovery has already run
 * when they call in. Here nothing has touched OpenCL before the threads do: each round forks a fresh
 * process in which THREADS threads wait at a barrier, then each creates a context, adds two small tensors,
 * checks the sum and frees everything. The parent never creates a context itself (that would warm up the
 * driver in the children too); it only reads what each child reports through a pipe and how it ended, so a
 * crash inside the OpenCL driver is a failed test, not a dead test program.
 *
 * The rounds run with the machine's OpenCL vendors as they are, and again with POCL as the only vendor (the
 * usual set-up of a machine without a GPU: with Mesa's ICDs also installed, the ICD loader's own start-up
 * happens to keep the threads apart). Before libclai discovered devices once per process, POCL 3.1 alone
 * crashed in clGetDeviceInfo or reported no device in nearly every round.
 *
 * CLAI_TEST_COLD_ROUNDS sets the number of fresh processes per variant (default ROUNDS). */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define THREADS 6
#define ROUNDS 4
#define N 37 /* elements of the small sum: not a multiple of any work-group size */
#define POCL_ICD "/etc/OpenCL/vendors/pocl.icd" /* where Debian's pocl-opencl-icd registers POCL */

/* Under AddressSanitizer (--enable-sanitizers), no alternate signal stacks of its own: here the driver
 * starts LLVM in one of the worker threads, LLVM installs a malloc'd alternate signal stack on it, and
 * ASan, unaware, tries to munmap that stack when the thread exits ("AddressSanitizer failed to
 * deallocate"). The hook is read once at start-up; without ASan it is an unused function. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "use_sigaltstack=0"; }

/* Set in the parent before each fork: the OCL_ICD_VENDORS of the children (NULL: leave it as it is). */
static const char *child_vendors;
/* Oclgrind 21.10 counts the work-groups of a launch in one process-wide variable (nextGroupIndex in its
 * KernelInvocation.cpp), so two launches at once from two threads skip or repeat work-groups. There the
 * contexts are still created at once, cold, but the sums take turns. */
static int one_launch_at_a_time;
static pthread_mutex_t launch_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct cold_worker {
  int id;
  pthread_barrier_t *start;
  char failure[3072]; /* empty: this thread did its work */
} cold_worker;

static void *cold_main(void *arg) {
  cold_worker *w = arg;
  clai_context *ctx = NULL;
  clai_tensor *a = NULL, *b = NULL, *c = NULL;
  float av[N], bv[N], got[N];
  char err[2048];
  const int64_t shape[1] = {N};
  for (int i = 0; i < N; i++) {
    av[i] = (float)(i - 11) * 0.25f;
    bv[i] = (float)(w->id * 100 + i);
  }
  pthread_barrier_wait(w->start);
  clai_status st = clai_context_init_ex(&ctx, NULL, err, sizeof err);
  if (st != CLAI_OK) {
    snprintf(w->failure, sizeof w->failure, "thread %d: clai_context_init_ex -> %s: %s", w->id, clai_status_name(st),
             err);
    return NULL;
  }
#define COLD_OK(call)                                                                                         \
  do {                                                                                                        \
    if ((st = (call)) != CLAI_OK) {                                                                           \
      snprintf(w->failure, sizeof w->failure, "thread %d: %s -> %s: %s", w->id, #call, clai_status_name(st), \
               clai_errmsg(ctx));                                                                             \
      goto out;                                                                                               \
    }                                                                                                         \
  } while (0)
  if (one_launch_at_a_time) pthread_mutex_lock(&launch_lock);
  COLD_OK(clai_tensor_init(ctx, &a, CLAI_DTYPE_F32, 1, shape));
  COLD_OK(clai_tensor_init(ctx, &b, CLAI_DTYPE_F32, 1, shape));
  COLD_OK(clai_tensor_init(ctx, &c, CLAI_DTYPE_F32, 1, shape));
  COLD_OK(clai_tensor_write(a, av, sizeof av));
  COLD_OK(clai_tensor_write(b, bv, sizeof bv));
  COLD_OK(clai_binary(ctx, CLAI_ADD, c, a, b));
  COLD_OK(clai_tensor_read(c, got, sizeof got));
#undef COLD_OK
  for (int i = 0; i < N; i++) {
    /* Both addends and their sum are exact in f32. */
    double want = (double)av[i] + (double)bv[i];
    if ((double)got[i] != want) {
      snprintf(w->failure, sizeof w->failure, "thread %d: element %d of the sum is %.9g, expected %.9g", w->id, i,
               (double)got[i], want);
      break;
    }
  }
out:
  clai_tensor_free(a);
  clai_tensor_free(b);
  clai_tensor_free(c);
  if (one_launch_at_a_time) pthread_mutex_unlock(&launch_lock);
  clai_context_free(ctx);
  return NULL;
}

/* The body of one fresh process: the threads, then one line per failure on fd; exits 0 when all passed. */
static void cold_child(int fd) {
  pthread_barrier_t start;
  pthread_t th[THREADS];
  cold_worker ws[THREADS];
  memset(ws, 0, sizeof ws);
  if (child_vendors != NULL) setenv("OCL_ICD_VENDORS", child_vendors, 1);
  pthread_barrier_init(&start, NULL, THREADS);
  for (int i = 0; i < THREADS; i++) {
    ws[i].id = i;
    ws[i].start = &start;
    if (pthread_create(&th[i], NULL, cold_main, &ws[i]) != 0) {
      dprintf(fd, "pthread_create failed for thread %d\n", i);
      _exit(2);
    }
  }
  int failures = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(th[i], NULL);
    if (ws[i].failure[0] != '\0') {
      dprintf(fd, "%s\n", ws[i].failure);
      failures++;
    }
  }
  pthread_barrier_destroy(&start);
  _exit(failures == 0 ? 0 : 1);
}

/* Runs body(fd) in a fresh process; returns its wait status, its report in out (NUL-terminated). */
static int in_child(void (*body)(int), char *out, size_t cap) {
  int p[2];
  assert_int_equal(pipe(p), 0);
  fflush(stdout);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(p[0]);
    body(p[1]);
    _exit(0);
  }
  close(p[1]);
  size_t len = 0;
  ssize_t got;
  while ((got = read(p[0], out + len, cap - 1 - len)) > 0) {
    len += (size_t)got;
    if (len == cap - 1) break;
  }
  out[len] = '\0';
  close(p[0]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  return status;
}

static void cold_rounds(const char *vendors) {
  child_vendors = vendors;
  int rounds = ROUNDS;
  const char *env = getenv("CLAI_TEST_COLD_ROUNDS");
  if (env != NULL && atoi(env) > 0) rounds = atoi(env);
  int bad = 0;
  for (int r = 0; r < rounds; r++) {
    char report[8192];
    int status = in_child(cold_child, report, sizeof report);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && report[0] == '\0') continue;
    bad++;
    if (WIFSIGNALED(status))
      print_message("# round %d: killed by signal %d (%s)\n", r, WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
      print_message("# round %d: exit status %d\n", r, WEXITSTATUS(status));
    for (char *line = strtok(report, "\n"); line != NULL; line = strtok(NULL, "\n"))
      print_message("#   %s\n", line);
  }
  if (bad != 0)
    fail_msg("%d of %d cold rounds of %d threads failed (OCL_ICD_VENDORS %s)", bad, rounds, THREADS,
             vendors != NULL ? vendors : "as set");
}

static void test_cold_start(void **state) {
  (void)state;
  cold_rounds(NULL);
}

static void test_cold_start_pocl_only(void **state) {
  (void)state;
  if (access(POCL_ICD, R_OK) != 0 || getenv("OCL_ICD_VENDORS") != NULL) {
    /* cmocka 1.1.5's skip() fails under automake's TAP driver: say so and pass. */
    print_message("# no %s, or OCL_ICD_VENDORS set by the caller: the rounds above cover it\n", POCL_ICD);
    return;
  }
  cold_rounds(POCL_ICD);
}

/* Whether this machine has a device at all, asked in a fresh process so that this one stays cold. */
static void probe_child(int fd) {
  char err[2048];
  clai_context *ctx = NULL;
  clai_status st = clai_context_init_ex(&ctx, NULL, err, sizeof err);
  if (st == CLAI_E_NO_DEVICE && strstr(err, "every candidate failed") == NULL) {
    dprintf(fd, "%s", err);
    _exit(3);
  }
  if (ctx != NULL && clait_oclgrind(ctx)) dprintf(fd, "oclgrind");
  clai_context_free(ctx);
  _exit(0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CLAIT_TIMED(test_cold_start),
      CLAIT_TIMED(test_cold_start_pocl_only),
  };
  char err[4096];
  int status = in_child(probe_child, err, sizeof err);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
    printf("1..0 # SKIP no OpenCL device: %s\n", err);
    return 0;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && strcmp(err, "oclgrind") == 0) {
    one_launch_at_a_time = 1;
    printf("# concurrent kernel launches from several threads need an implementation that allows them; on "
           "Oclgrind the contexts start at once and the sums take turns\n");
  }
  return CLAIT_MAIN("threads-cold", tests, 0);
}
