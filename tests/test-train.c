/* test-train.c - the training blocks working together: a two-layer perceptron (no biases) with dropout,
 * trained with AdamW and gradient clipping on separable synthetic clusters. Checks that the gradients the
 * backward ops assemble (matmul, dropout mask, clai_unary_backward, cross-entropy) agree with central
 * finite differences of the device loss, that training drives the loss down and classifies the data, and
 * that two runs from the same seeds give the same bits. */
#include "testutil.h"

#define CTX(state) ((clai_context *)*(state))

enum { NMAX = 256, D = 8, H = 32, K = 4 };

/* The samples: 256, in small mode 64 (one tile of rows in the GPU families' GEMMs instead of four: the products
 * over the samples were most of a training step on Oclgrind). */
static int nsamples(void) { return clait_small() ? 64 : NMAX; }

typedef struct net {
  clai_tensor *x, *labels, *w1, *w2, *hpre, *h, *hd, *mask, *logits, *dlogits, *dhd, *dh, *dhpre, *dw1, *dw2,
      *m1, *v1, *m2, *v2, *loss, *norm;
} net;

static clai_tensor *mk(clai_context *ctx, clai_dtype dt, int64_t a, int64_t b) {
  clai_tensor *t = NULL;
  int64_t shape[2] = {a, b};
  CLAIT_OK(ctx, clai_tensor_init(ctx, &t, dt, b > 0 ? 2 : (a > 0 ? 1 : 0), shape));
  return t;
}

/* Data: class i % K around a centre of norm ~4 per class, unit normal noise drawn on the device. */
static void net_init(clai_context *ctx, net *n) {
  const int N = nsamples();
  n->x = mk(ctx, CLAI_DTYPE_F32, N, D);
  n->labels = mk(ctx, CLAI_DTYPE_I32, N, 0);
  n->w1 = mk(ctx, CLAI_DTYPE_F32, H, D);
  n->w2 = mk(ctx, CLAI_DTYPE_F32, K, H);
  n->hpre = mk(ctx, CLAI_DTYPE_F32, N, H);
  n->h = mk(ctx, CLAI_DTYPE_F32, N, H);
  n->hd = mk(ctx, CLAI_DTYPE_F32, N, H);
  n->mask = mk(ctx, CLAI_DTYPE_F32, N, H);
  n->logits = mk(ctx, CLAI_DTYPE_F32, N, K);
  n->dlogits = mk(ctx, CLAI_DTYPE_F32, N, K);
  n->dhd = mk(ctx, CLAI_DTYPE_F32, N, H);
  n->dh = mk(ctx, CLAI_DTYPE_F32, N, H);
  n->dhpre = mk(ctx, CLAI_DTYPE_F32, N, H);
  n->dw1 = mk(ctx, CLAI_DTYPE_F32, H, D);
  n->dw2 = mk(ctx, CLAI_DTYPE_F32, K, H);
  n->m1 = mk(ctx, CLAI_DTYPE_F32, H, D);
  n->v1 = mk(ctx, CLAI_DTYPE_F32, H, D);
  n->m2 = mk(ctx, CLAI_DTYPE_F32, K, H);
  n->v2 = mk(ctx, CLAI_DTYPE_F32, K, H);
  n->loss = mk(ctx, CLAI_DTYPE_F32, 0, 0);
  n->norm = mk(ctx, CLAI_DTYPE_F32, 0, 0);
  float centre[K][D], noise[NMAX * D], x[NMAX * D];
  int32_t lab[NMAX];
  clait_rng r = {0xc1a55};
  for (int k = 0; k < K; k++)
    for (int d = 0; d < D; d++) centre[k][d] = clait_uniform(&r, -2.5f, 2.5f);
  CLAIT_OK(ctx, clai_rand_normal(ctx, n->x, 2026, 0, 0.0f, 1.0f));
  CLAIT_OK(ctx, clai_tensor_read(n->x, noise, (size_t)(N * D) * 4));
  for (int i = 0; i < N; i++) {
    lab[i] = i % K;
    for (int d = 0; d < D; d++) x[i * D + d] = centre[lab[i]][d] + noise[i * D + d];
  }
  CLAIT_OK(ctx, clai_tensor_write(n->x, x, (size_t)(N * D) * 4));
  CLAIT_OK(ctx, clai_tensor_write(n->labels, lab, (size_t)N * 4));
  CLAIT_OK(ctx, clai_init_kaiming_uniform(ctx, n->w1, 7, 0, 0.0f, 0));
  CLAIT_OK(ctx, clai_init_xavier_uniform(ctx, n->w2, 7, 1, 0.0f));
  clai_tensor *zero[] = {n->m1, n->v1, n->m2, n->v2};
  for (int i = 0; i < 4; i++) CLAIT_OK(ctx, clai_fill(ctx, zero[i], 0.0));
}

static void net_free(net *n) {
  clai_tensor **all = &n->x;
  for (size_t i = 0; i < sizeof *n / sizeof(clai_tensor *); i++) clai_tensor_free(all[i]);
}

/* Forward (dropout p with the stream `offset`), and with `backward` the gradients dw1 and dw2. */
static void step(clai_context *ctx, net *n, float p, uint64_t offset, int backward) {
  CLAIT_OK(ctx, clai_matmul(ctx, n->hpre, n->x, 0, n->w1, 1, 1.0f, 0.0f));
  CLAIT_OK(ctx, clai_unary(ctx, CLAI_RELU, n->h, n->hpre));
  CLAIT_OK(ctx, clai_dropout(ctx, n->hd, n->mask, n->h, p, 99, offset));
  CLAIT_OK(ctx, clai_matmul(ctx, n->logits, n->hd, 0, n->w2, 1, 1.0f, 0.0f));
  CLAIT_OK(ctx, clai_loss_cross_entropy(ctx, n->loss, backward ? n->dlogits : NULL, n->logits, n->labels, -100));
  if (!backward) return;
  CLAIT_OK(ctx, clai_matmul(ctx, n->dw2, n->dlogits, 1, n->hd, 0, 1.0f, 0.0f));
  CLAIT_OK(ctx, clai_matmul(ctx, n->dhd, n->dlogits, 0, n->w2, 0, 1.0f, 0.0f));
  CLAIT_OK(ctx, clai_binary(ctx, CLAI_MUL, n->dh, n->dhd, n->mask));
  CLAIT_OK(ctx, clai_unary_backward(ctx, CLAI_RELU, n->dhpre, n->dh, n->hpre));
  CLAIT_OK(ctx, clai_matmul(ctx, n->dw1, n->dhpre, 1, n->x, 0, 1.0f, 0.0f));
}

static float read1(clai_context *ctx, clai_tensor *t) {
  float v = 0;
  CLAIT_OK(ctx, clai_tensor_read(t, &v, 4));
  return v;
}

/* The assembled gradients against a double-precision backpropagation on the host (with the device's
 * dropout mask), and against central differences of the device loss where the perturbation crosses no
 * relu kink. */
static void gradient_check(void **state) {
  clai_context *ctx = CTX(state);
  const int N = nsamples();
  net n;
  net_init(ctx, &n);
  step(ctx, &n, 0.25f, 3, 1);
  static float x[NMAX * D], w1[H * D], w2[K * H], mask[NMAX * H], dw1[H * D], dw2[K * H];
  static int32_t lab[NMAX];
  static double hpre[NMAX * H], hd[NMAX * H], lg[NMAX * K], dl[NMAX * K], dh[NMAX * H], g1[H * D], g2[K * H];
  CLAIT_OK(ctx, clai_tensor_read(n.x, x, (size_t)(N * D) * 4));
  CLAIT_OK(ctx, clai_tensor_read(n.w1, w1, sizeof w1));
  CLAIT_OK(ctx, clai_tensor_read(n.w2, w2, sizeof w2));
  CLAIT_OK(ctx, clai_tensor_read(n.mask, mask, (size_t)(N * H) * 4));
  CLAIT_OK(ctx, clai_tensor_read(n.dw1, dw1, sizeof dw1));
  CLAIT_OK(ctx, clai_tensor_read(n.dw2, dw2, sizeof dw2));
  CLAIT_OK(ctx, clai_tensor_read(n.labels, lab, (size_t)N * 4));
  double loss = 0;
  for (int i = 0; i < N; i++)
    for (int h = 0; h < H; h++) {
      double acc = 0;
      for (int d = 0; d < D; d++) acc += (double)x[i * D + d] * w1[h * D + d];
      hpre[i * H + h] = acc;
      hd[i * H + h] = (acc > 0 ? acc : 0) * mask[i * H + h];
    }
  for (int i = 0; i < N; i++) {
    double m = -INFINITY, se = 0;
    for (int k = 0; k < K; k++) {
      double acc = 0;
      for (int h = 0; h < H; h++) acc += hd[i * H + h] * w2[k * H + h];
      lg[i * K + k] = acc;
      m = acc > m ? acc : m;
    }
    for (int k = 0; k < K; k++) se += exp(lg[i * K + k] - m);
    loss += m + log(se) - lg[i * K + lab[i]];
    for (int k = 0; k < K; k++) dl[i * K + k] = (exp(lg[i * K + k] - m) / se - (k == lab[i])) / N;
  }
  for (int i = 0; i < N; i++)
    for (int h = 0; h < H; h++) {
      double acc = 0;
      for (int k = 0; k < K; k++) acc += dl[i * K + k] * w2[k * H + h];
      dh[i * H + h] = hpre[i * H + h] > 0 ? acc * mask[i * H + h] : 0;
    }
  for (int j = 0; j < H * D; j++) {
    double acc = 0;
    for (int i = 0; i < N; i++) acc += dh[i * H + j / D] * x[i * D + j % D];
    g1[j] = acc;
  }
  for (int j = 0; j < K * H; j++) {
    double acc = 0;
    for (int i = 0; i < N; i++) acc += dl[i * K + j / H] * hd[i * H + j % H];
    g2[j] = acc;
  }
  float l = read1(ctx, n.loss);
  if (fabs(l - loss / N) > 1e-5 * loss / N) fail_msg("loss %.9g, host %.9g", l, loss / N);
  clait_expect_close("dW1 vs host", dw1, g1, H * D, 1e-6, 1e-4);
  clait_expect_close("dW2 vs host", dw2, g2, K * H, 1e-6, 1e-4);
  const float eps = 1e-3f;
  int checked = 0;
  for (int which = 0; which < 2; which++) {
    float *w = which ? w2 : w1, *dw = which ? dw2 : dw1;
    clai_tensor *tw = which ? n.w2 : n.w1;
    int count = which ? K * H : H * D;
    size_t bytes = (size_t)count * 4;
    for (int j = 0; j < count; j += which ? CLAIT_SIZE(5, 19) : CLAIT_SIZE(7, 31)) { /* small: fewer entries */
      int kink = 0;
      for (int i = 0; i < N && !which; i++)
        kink |= fabs(hpre[i * H + j / D]) <= 2 * eps * fabs(x[i * D + j % D]);
      if (kink) continue;
      float keep = w[j], lp, lm;
      w[j] = keep + eps;
      CLAIT_OK(ctx, clai_tensor_write(tw, w, bytes));
      step(ctx, &n, 0.25f, 3, 0);
      lp = read1(ctx, n.loss);
      w[j] = keep - eps;
      CLAIT_OK(ctx, clai_tensor_write(tw, w, bytes));
      step(ctx, &n, 0.25f, 3, 0);
      lm = read1(ctx, n.loss);
      w[j] = keep;
      CLAIT_OK(ctx, clai_tensor_write(tw, w, bytes));
      double fd = ((double)lp - lm) / (2.0 * eps);
      /* the f32 loss (~1.4, ulp 1.2e-7) over 2e-3 leaves ~1e-4 of noise */
      if (fabs(fd - dw[j]) > 3e-4 + 0.01 * fabs(dw[j]))
        fail_msg("dW%d[%d]: backward %.6g, finite difference %.6g", which + 1, j, dw[j], fd);
      checked++;
    }
  }
  if (checked < CLAIT_SIZE(30, 8)) fail_msg("only %d entries could be checked by finite differences", checked);
  net_free(&n);
}

/* 150 steps (small mode: 20) of AdamW with clipping; returns the final loss and the accuracy without dropout. */
static float train(clai_context *ctx, float *first, double *accuracy) {
  const int N = nsamples();
  net n;
  net_init(ctx, &n);
  clai_adam_params hp = {2e-2f, 0.9f, 0.999f, 1e-8f, 1e-2f};
  clai_tensor *grads[2];
  /* small: 20 steps on the 64 samples; the loss still falls 15 times (POCL: 1.241 -> 0.084) and the accuracy is
   * 0.95, where 4 times and 0.9 are asked (on 256 samples: 8.6 times and 0.94) */
  for (int s = 1; s <= CLAIT_SIZE(150, 20); s++) {
    step(ctx, &n, 0.1f, (uint64_t)s, 1);
    if (s == 1) *first = read1(ctx, n.loss);
    grads[0] = n.dw1;
    grads[1] = n.dw2;
    CLAIT_OK(ctx, clai_clip_grad_norm(ctx, grads, 2, 1.0f, n.norm));
    CLAIT_OK(ctx, clai_optim_adamw(ctx, n.w1, n.m1, n.v1, n.dw1, s, &hp));
    CLAIT_OK(ctx, clai_optim_adamw(ctx, n.w2, n.m2, n.v2, n.dw2, s, &hp));
  }
  step(ctx, &n, 0.0f, 0, 0);
  float logits[NMAX * K], last = read1(ctx, n.loss);
  CLAIT_OK(ctx, clai_tensor_read(n.logits, logits, (size_t)(N * K) * 4));
  int right = 0;
  for (int i = 0; i < N; i++) {
    int best = 0;
    for (int k = 1; k < K; k++)
      if (logits[i * K + k] > logits[i * K + best]) best = k;
    right += best == i % K;
  }
  *accuracy = (double)right / N;
  net_free(&n);
  return last;
}

static void training(void **state) {
  clai_context *ctx = CTX(state);
  float first, first2;
  double acc, acc2;
  float last = train(ctx, &first, &acc);
  if (!(last < 0.25f * first) || acc < 0.9)
    fail_msg("loss %g -> %g, accuracy %.3f: training did not converge", first, last, acc);
  if (clait_oclgrind(ctx)) { /* 23 s in the simulator, deterministic by construction; POCL and rusticl check it */
    printf("# training: the second run (the same bits) is left to the other implementations\n");
    return;
  }
  float again = train(ctx, &first2, &acc2);
  assert_memory_equal(&last, &again, sizeof last);
  assert_memory_equal(&first, &first2, sizeof first);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(gradient_check, clait_setup, clait_teardown),
      cmocka_unit_test_setup_teardown(training, clait_setup, clait_teardown),
  };
  return CLAIT_MAIN("train", tests, 1);
}
