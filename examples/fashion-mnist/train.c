/* train.c - training a classifier on Fashion-MNIST with libclai, everything on the device.
 *
 * The whole training set lives on the device as f32 [n, 784] (pixels / 255) with its i32 labels. At the start
 * of each epoch a permutation (a pure function of the seed and the epoch number, so a resumed run shuffles
 * exactly as an uninterrupted one) is written to the device and clai_gather_rows assembles the shuffled copy
 * of images and labels there; each step's batch is then a row slice of that copy, a view, so a step enqueues
 * only kernels: the forward pass (clai_matmul_ex with the bias and ReLU fused), the loss with the gradient of
 * the logits (clai_loss_cross_entropy, written into this step's slot of a per-epoch loss vector), the
 * backward pass (transposed matmuls, bias gradients as products with a ones column, the ReLU mask through
 * clai_unary_backward) and one clai_optim_adam over all parameters at once: parameters, gradients and Adam's
 * state are each one flat tensor of which the layers' weights and biases are views. Nothing is read back
 * during an epoch except, on a terminal, the loss for the progress bar every PROGRESS_EVERY steps.
 *
 * Timing follows ../shared/peers/fmnist_torch.py: train_s is the training loop only (from the first enqueued
 * step to the completion of the last), the shuffle (permutation + gather) is reported apart as shuffle_s.
 *
 * The model is a table of callbacks (struct model_ops): the MLP (784-256-128-10) and the CNN of the PyTorch
 * reference (two 5x5 convolutions with ReLU and 2x2 max-pooling, then two dense layers; see cnn_build). */
#include "train.h"

#include <errno.h>
#include <pthread.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <clai.h>

#include "build-helper.h"
#include "checkpoint.h"
#include "dp.h"
#include "mnist.h"

#define PIXELS 784
#define CLASSES 10
#define EVAL_BATCH 1000
#define PROGRESS_EVERY 100
#define MAX_LAYERS 4
#define EPOCHS_MAX 100000 /* the most --epochs takes, and the most completed epochs a checkpoint may claim */

typedef struct options {
  const char *model, *data, *checkpoint;
  const char *devices;   /* --devices LIST: comma-separated indices from `clai devices`, or NULL */
  const char *loss_log;  /* --loss-log PATH: every step's loss, or NULL */
  int epochs, batch, json, resume;
  uint64_t seed;
  float lr;
  int64_t train_limit, test_limit;
  int no_helper;          /* --no-build-helper */
  const char *as_helper;  /* --as-build-helper DIR: this process is the build helper of another */
} options;

/* A dense layer y = act(x W^T + b) with nn.Linear's W [out, in] and b [out]. W is stored transposed, as
 * wt [in, out] (x wt, x^T dy and dy wt^T run faster than the other orientation on POCL's packed GEMM);
 * w is the [out, in] view of it (for the initialisation and the checkpoint). Weights, biases and their
 * gradients are views of the flat parameter and gradient tensors. */
typedef struct dense {
  int64_t in, out;
  int64_t off;           /* where its parameters start in the flat tensors */
  clai_activation act;
  clai_tensor *wt, *w, *b, *gwt, *gb;
  clai_tensor *y, *dy;   /* [batch, out] training activations and their gradients */
  clai_tensor *ey;       /* [EVAL_BATCH, out] evaluation activations */
} dense;

/* A convolution with a fused ReLU followed by 2x2 max-pooling (the CNN's blocks): out channels from in,
 * on hw x hw images, 5x5 kernels with padding 2 (same size), pooled to hw/2 x hw/2. w [out, in, 5, 5] and
 * b [out] (and their gradients) are views of the flat parameter and gradient tensors. */
typedef struct conv_layer {
  int64_t in, out, hw;
  clai_tensor *w, *b, *gw, *gb;
  clai_tensor *c;        /* [max(batch, EVAL_BATCH), out, hw, hw]: relu(conv + b), only read by the pooling */
  clai_tensor *p;        /* [max(batch, EVAL_BATCH), out, hw/2, hw/2]: the pooled output */
  clai_tensor *idx;      /* [batch, out, hw/2, hw/2] i32: where each maximum came from (training only) */
  clai_tensor *dp;       /* [batch, out, hw/2, hw/2]: the gradient of p */
  clai_tensor *dc;       /* [batch, out, hw, hw]: the gradient of conv + b */
} conv_layer;

typedef struct trainer {
  clai_context *ctx;
  options o;
  const char *prog;
  /* Data parallelism (examples/dataparallel): rank `rank` of `nranks` computes rows [lo, hi) of each global
   * batch, its gradient scaled by its share of the rows, and red sums the gradients of all ranks before the
   * optimizer step. One rank: comm is the group of one, red NULL, and nothing changes. */
  dp_comm *comm;
  int rank, nranks;
  dp_reducer *red;
  FILE *devnull;         /* the log of ranks other than 0 */
  FILE *loss_log;        /* --loss-log, on rank 0 */
  FILE *log;             /* progress: stdout, or stderr with --json */
  int tty;
  int64_t ntrain, ntest, steps_per_epoch;
  uint8_t *test_labels;  /* host copy, for the accuracy */
  clai_tensor *xtrain, *ytrain, *xtest, *xs, *ys, *perm;
  clai_tensor *params, *grads, *adam_m, *adam_v;
  int64_t nparams;
  int nlayers;
  dense layer[MAX_LAYERS];
  int nconv;             /* the CNN's convolution blocks, before the dense layers (0 for the MLP) */
  conv_layer conv[2];
  char pnames[2 * MAX_LAYERS][24];
  clai_tensor *dlogits;  /* [batch, CLASSES]: the gradient of the logits, where the model's backward reads it
                          * (owned by the model) */
  clai_tensor *ones;     /* [1, batch] of 1 */
  clai_tensor *losses;   /* [steps_per_epoch] */
  clai_tensor *test_logits; /* [ntest, CLASSES] */
  int64_t step;          /* Adam steps taken */
  /* $FMNIST_PROFILE=1: every op is waited for and its time added to a bucket (slow; for finding where the
   * step's time goes, not for measuring speed). */
  int profile;
  double prof_last;
  const char *prof_name[32];
  double prof_sum[32];
  int prof_n;
} trainer;

/* A model: how it lays out its parameters and runs a step. */
typedef struct model_ops {
  const char *name;
  int default_epochs;
  int (*build)(trainer *t);
  /* Enqueues the forward pass of rows [0, b) of x into its logits; returns the logits tensor (a view the
   * caller frees) or NULL. train selects the training buffers (batch) or the evaluation ones. */
  clai_tensor *(*forward)(trainer *t, clai_tensor *x, int64_t b, int train);
  /* Enqueues the backward pass from the gradient of the logits (already in rows [0, b) of t->dlogits) into
   * t->grads. */
  int (*backward)(trainer *t, clai_tensor *x, int64_t b);
} model_ops;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void prof(trainer *t, const char *name) {
  if (!t->profile) return;
  clai_sync(t->ctx);
  double n = now();
  int i = 0;
  while (i < t->prof_n && strcmp(t->prof_name[i], name) != 0) i++;
  if (i == t->prof_n && i < 32) t->prof_name[t->prof_n++] = name;
  if (i < 32) t->prof_sum[i] += n - t->prof_last;
  t->prof_last = n;
}

static int fail(trainer *t, const char *what, clai_status st) {
  fprintf(stderr, "%s: %s failed: %s: %s\n", t->prog, what, clai_status_name(st), clai_errmsg(t->ctx));
  return -1;
}

#define TRY(t, call)                                                                                         \
  do {                                                                                                       \
    clai_status st_ = (call);                                                                                \
    if (st_ != CLAI_OK) return fail((t), #call, st_);                                                        \
  } while (0)

#define TRYN(t, call)                                                                                        \
  do {                                                                                                       \
    clai_status st_ = (call);                                                                                \
    if (st_ != CLAI_OK) {                                                                                    \
      fail((t), #call, st_);                                                                                 \
      return NULL;                                                                                           \
    }                                                                                                        \
  } while (0)

static clai_tensor *mk(trainer *t, clai_dtype dt, int ndim, int64_t d0, int64_t d1) {
  clai_tensor *x = NULL;
  int64_t shape[2] = {d0, d1};
  clai_status st = clai_tensor_init(t->ctx, &x, dt, ndim, shape);
  if (st != CLAI_OK) fail(t, "clai_tensor_init", st);
  return x;
}

/* A dense 2-d (d1 > 0) or 1-d view of `count` elements of a flat tensor from element `off`. */
static clai_tensor *flat_view(clai_tensor *flat, int64_t off, int64_t d0, int64_t d1) {
  clai_tensor *v = NULL;
  int64_t shape[2] = {d0, d1}, strides[2] = {d1 > 0 ? d1 : 1, 1};
  if (d1 > 0) clai_tensor_view(flat, &v, 2, shape, strides, off);
  else clai_tensor_view(flat, &v, 1, shape, strides + 1, off);
  return v;
}

/* Rows [r0, r1) of a tensor, as a view. */
static clai_tensor *rows(clai_tensor *x, int64_t r0, int64_t r1) {
  clai_tensor *v = NULL;
  if (clai_tensor_slice(x, &v, 0, r0, r1, 1) != CLAI_OK) return NULL;
  return v;
}

/* ---- the MLP: 784-256-128-10, ReLU ------------------------------------------------------------------- */

/* The flat parameter, gradient and Adam state tensors of t->nparams elements. */
static int alloc_flat(trainer *t) {
  if ((t->params = mk(t, CLAI_DTYPE_F32, 1, t->nparams, 0)) == NULL) return -1;
  if ((t->grads = mk(t, CLAI_DTYPE_F32, 1, t->nparams, 0)) == NULL) return -1;
  if ((t->adam_m = mk(t, CLAI_DTYPE_F32, 1, t->nparams, 0)) == NULL) return -1;
  if ((t->adam_v = mk(t, CLAI_DTYPE_F32, 1, t->nparams, 0)) == NULL) return -1;
  return 0;
}

/* The dense layers sizes[0] -> sizes[1] -> ... -> sizes[n] (ReLU after all but the last), their parameters
 * from element `off` of the flat tensors, initialised with random streams stream0, stream0 + 1, ... */
static int dense_setup(trainer *t, const int64_t *sizes, int n, int64_t off, uint64_t stream0) {
  t->nlayers = n;
  for (int i = 0; i < t->nlayers; i++) {
    dense *l = &t->layer[i];
    l->in = sizes[i], l->out = sizes[i + 1], l->off = off;
    l->act = i + 1 < t->nlayers ? CLAI_ACT_RELU : CLAI_ACT_NONE;
    l->wt = flat_view(t->params, off, l->in, l->out);
    l->gwt = flat_view(t->grads, off, l->in, l->out);
    if (l->wt != NULL) clai_tensor_transpose(l->wt, &l->w, 0, 1);
    off += l->out * l->in;
    l->b = flat_view(t->params, off, l->out, 0);
    l->gb = flat_view(t->grads, off, l->out, 0);
    off += l->out;
    l->y = mk(t, CLAI_DTYPE_F32, 2, t->o.batch, l->out);
    l->dy = mk(t, CLAI_DTYPE_F32, 2, t->o.batch, l->out);
    l->ey = mk(t, CLAI_DTYPE_F32, 2, EVAL_BATCH, l->out);
    if (!l->wt || !l->w || !l->gwt || !l->b || !l->gb || !l->y || !l->dy || !l->ey) return -1;
    if (i + 1 == t->nlayers) t->dlogits = l->dy;
    snprintf(t->pnames[2 * i], sizeof t->pnames[0], "fc%d.weight", i + 1);
    snprintf(t->pnames[2 * i + 1], sizeof t->pnames[0], "fc%d.bias", i + 1);
  }
  /* nn.Linear's default initialisation: kaiming uniform with a = sqrt(5) (bound 1/sqrt(fan_in)) for the
   * weight, uniform +-1/sqrt(fan_in) for the bias; each tensor its own stream of the seed. */
  for (int i = 0; i < t->nlayers; i++) {
    dense *l = &t->layer[i];
    float bound = 1.0f / sqrtf((float)l->in);
    uint64_t st = stream0 + (uint64_t)(2 * i);
    TRY(t, clai_init_kaiming_uniform(t->ctx, l->w, t->o.seed, st, sqrtf(1.0f / 3.0f), 0));
    TRY(t, clai_rand_uniform(t->ctx, l->b, t->o.seed, st + 1, -bound, bound));
  }
  return 0;
}

static int mlp_build(trainer *t) {
  static const int64_t sizes[] = {PIXELS, 256, 128, CLASSES};
  const int n = 3;
  t->nparams = 0;
  for (int i = 0; i < n; i++) t->nparams += sizes[i + 1] * sizes[i] + sizes[i + 1];
  if (alloc_flat(t) != 0) return -1;
  return dense_setup(t, sizes, n, 0, 0);
}

static clai_tensor *mlp_forward(trainer *t, clai_tensor *x, int64_t b, int train) {
  clai_tensor *in = x, *out = NULL;
  for (int i = 0; i < t->nlayers; i++) {
    dense *l = &t->layer[i];
    out = rows(train ? l->y : l->ey, 0, b);
    if (out == NULL) {
      if (in != x) clai_tensor_free(in);
      return NULL;
    }
    clai_matmul_epilogue ep = {l->b, l->act};
    clai_status st = clai_matmul_ex(t->ctx, out, in, 0, l->wt, 0, 1.0f, 0.0f, &ep);
    if (in != x) clai_tensor_free(in);
    if (st != CLAI_OK) {
      clai_tensor_free(out);
      fail(t, "clai_matmul_ex (forward)", st);
      return NULL;
    }
    static const char *names[MAX_LAYERS] = {"fc1 forward", "fc2 forward", "fc3 forward", "fc4 forward"};
    if (train) prof(t, names[i]);
    in = out;
  }
  return out;
}

/* The backward of the dense layers from t->dlogits, x being the first layer's input [b, in]. dx NULL: the
 * gradient of x is not needed; else dx [b, in] receives it, masked by ReLU's derivative at x (x is the
 * output of a ReLU, or of a max-pooling of one). */
static int dense_backward(trainer *t, clai_tensor *x, int64_t b, clai_tensor *dx) {
  clai_context *ctx = t->ctx;
  int rc = -1;
  clai_tensor *ones = NULL, *ones_row = NULL, *gb = NULL, *dy = NULL, *dprev = NULL, *yprev = NULL;
  if (clai_tensor_slice(t->ones, &ones_row, 1, 0, b, 1) != CLAI_OK) return -1;
  const int st0 = clai_tensor_transpose(ones_row, &ones, 0, 1); /* [b, 1] */
  clai_tensor_free(ones_row);
  if (st0 != CLAI_OK) return -1;
  for (int i = t->nlayers - 1; i >= 0; i--) {
    dense *l = &t->layer[i];
    dy = rows(l->dy, 0, b);
    yprev = i > 0 ? rows(t->layer[i - 1].y, 0, b) : x;
    int64_t gbs[2] = {l->out, 1};
    if (dy == NULL || yprev == NULL || clai_tensor_reshape(l->gb, &gb, 2, gbs) != CLAI_OK) goto done;
    clai_status st;
    /* dW^T = x_prev^T dy, db = dy^T 1 (a column: M = out rows, so the products a step already runs; as
     * 1^T dy, M = 1 took a skinny kernel of its own, one more compilation at a cold start) */
    if ((st = clai_matmul(ctx, l->gwt, yprev, 1, dy, 0, 1.0f, 0.0f)) != CLAI_OK) goto err;
    prof(t, "fc weight gradients");
    if ((st = clai_matmul(ctx, gb, dy, 1, ones, 0, 1.0f, 0.0f)) != CLAI_OK) goto err;
    prof(t, "fc bias gradients");
    /* this layer's gradients are final: the reduction of [l->off, end) may start while the rest runs */
    if (t->red != NULL && dp_reducer_ready(t->red, l->off) != 0) {
      fprintf(stderr, "%s: reducing the gradient: %s\n", t->prog, dp_reducer_error(t->red));
      goto done;
    }
    if (i > 0 || dx != NULL) {
      /* dx_prev = dy W = dy wt^T, then through the ReLU of the previous layer: its output is positive exactly where
       * its input was, so the output serves as the "x" of the derivative. */
      if ((dprev = i > 0 ? rows(t->layer[i - 1].dy, 0, b) : dx) == NULL) goto done;
      if ((st = clai_matmul(ctx, dprev, dy, 0, l->wt, 1, 1.0f, 0.0f)) != CLAI_OK) goto err;
      prof(t, "fc input gradients");
      if ((st = clai_unary_backward(ctx, CLAI_RELU, dprev, dprev, yprev)) != CLAI_OK) goto err;
      prof(t, "fc relu backward");
      if (dprev != dx) clai_tensor_free(dprev);
      dprev = NULL;
    }
    clai_tensor_free(dy), dy = NULL;
    clai_tensor_free(gb), gb = NULL;
    if (yprev != x) clai_tensor_free(yprev);
    yprev = NULL;
    continue;
  err:
    fail(t, "backward", st);
    goto done;
  }
  rc = 0;
done:
  clai_tensor_free(ones), clai_tensor_free(gb), clai_tensor_free(dy);
  if (dprev != dx) clai_tensor_free(dprev);
  if (yprev != x) clai_tensor_free(yprev);
  return rc;
}

static int mlp_backward(trainer *t, clai_tensor *x, int64_t b) { return dense_backward(t, x, b, NULL); }

/* ---- the CNN: conv 5x5 1->32 + ReLU + max-pool 2, conv 5x5 32->64 + ReLU + max-pool 2, 3136-1024-10 --------
 *
 * The forward keeps what the backward reads: each block's pooled output p and the indices of its maxima
 * (the convolutions' outputs c are only the pooling's input). The backward applies ReLU's derivative to
 * the gradient of the *pooled* output, masked by p > 0, before the pooling's backward, rather than to the
 * gradient of c masked by c > 0: the pooling's backward sends each gradient only to its window's maximum,
 * where c equals p, and zeros everything else, so both give the same values, and the pooled tensors are a
 * quarter of the size. The first block's input gradient is not needed, so its data gradient is skipped. */

#define CNN_K 5
#define CNN_PAD 2
#define CNN_FLAT (64 * 7 * 7)

static const clai_conv2d_params CNN_CONV = {
    .pad_top = CNN_PAD, .pad_bottom = CNN_PAD, .pad_left = CNN_PAD, .pad_right = CNN_PAD, .activation = CLAI_ACT_RELU};
static const clai_pool2d_params CNN_POOL = {.kernel_h = 2, .kernel_w = 2};

static clai_tensor *mk4(trainer *t, clai_dtype dt, int64_t n, int64_t c, int64_t h, int64_t w) {
  clai_tensor *x = NULL;
  int64_t shape[4] = {n, c, h, w};
  clai_status st = clai_tensor_init(t->ctx, &x, dt, 4, shape);
  if (st != CLAI_OK) fail(t, "clai_tensor_init", st);
  return x;
}

/* A reshaped view of a dense tensor (NULL on failure). */
static clai_tensor *reshaped(clai_tensor *x, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
  clai_tensor *v = NULL;
  int64_t shape[4] = {d0, d1, d2, d3};
  if (x == NULL || clai_tensor_reshape(x, &v, ndim, shape) != CLAI_OK) return NULL;
  return v;
}

static int cnn_build(trainer *t) {
  static const int64_t chans[3] = {1, 32, 64}, hw[2] = {28, 14};
  static const int64_t sizes[] = {CNN_FLAT, 1024, CLASSES};
  const int64_t maxb = t->o.batch > EVAL_BATCH ? t->o.batch : EVAL_BATCH, B = t->o.batch;
  t->nconv = 2;
  t->nparams = 0;
  for (int i = 0; i < t->nconv; i++) t->nparams += chans[i + 1] * chans[i] * CNN_K * CNN_K + chans[i + 1];
  for (int i = 0; i < 2; i++) t->nparams += sizes[i + 1] * sizes[i] + sizes[i + 1];
  if (alloc_flat(t) != 0) return -1;
  int64_t off = 0;
  for (int i = 0; i < t->nconv; i++) {
    conv_layer *c = &t->conv[i];
    c->in = chans[i], c->out = chans[i + 1], c->hw = hw[i];
    const int64_t wshape[4] = {c->out, c->in, CNN_K, CNN_K}, wstr[4] = {c->in * CNN_K * CNN_K, CNN_K * CNN_K, CNN_K, 1};
    const int64_t nw = c->out * c->in * CNN_K * CNN_K, h2 = c->hw / 2;
    clai_tensor_view(t->params, &c->w, 4, wshape, wstr, off);
    clai_tensor_view(t->grads, &c->gw, 4, wshape, wstr, off);
    c->b = flat_view(t->params, off + nw, c->out, 0);
    c->gb = flat_view(t->grads, off + nw, c->out, 0);
    off += nw + c->out;
    c->c = mk4(t, CLAI_DTYPE_F32, maxb, c->out, c->hw, c->hw);
    c->p = mk4(t, CLAI_DTYPE_F32, maxb, c->out, h2, h2);
    c->idx = mk4(t, CLAI_DTYPE_I32, B, c->out, h2, h2);
    c->dp = mk4(t, CLAI_DTYPE_F32, B, c->out, h2, h2);
    c->dc = mk4(t, CLAI_DTYPE_F32, B, c->out, c->hw, c->hw);
    if (!c->w || !c->gw || !c->b || !c->gb || !c->c || !c->p || !c->idx || !c->dp || !c->dc) return -1;
  }
  /* nn.Conv2d's default initialisation is nn.Linear's, with fan_in = in * 5 * 5. */
  for (int i = 0; i < t->nconv; i++) {
    conv_layer *c = &t->conv[i];
    float bound = 1.0f / sqrtf((float)(c->in * CNN_K * CNN_K));
    TRY(t, clai_init_kaiming_uniform(t->ctx, c->w, t->o.seed, (uint64_t)(2 * i), sqrtf(1.0f / 3.0f), 0));
    TRY(t, clai_rand_uniform(t->ctx, c->b, t->o.seed, (uint64_t)(2 * i + 1), -bound, bound));
  }
  return dense_setup(t, sizes, 2, off, (uint64_t)(2 * t->nconv));
}

static clai_tensor *cnn_forward(trainer *t, clai_tensor *x, int64_t b, int train) {
  static const char *names[2][2] = {{"conv1 (+bias, relu)", "max-pool 1"}, {"conv2 (+bias, relu)", "max-pool 2"}};
  clai_tensor *in = reshaped(x, 4, b, 1, 28, 28), *out = NULL;
  if (in == NULL) {
    fprintf(stderr, "%s: the batch is not a dense [%lld, 784] block\n", t->prog, (long long)b);
    return NULL;
  }
  for (int i = 0; i < t->nconv; i++) {
    conv_layer *c = &t->conv[i];
    clai_tensor *cv = rows(c->c, 0, b), *pv = rows(c->p, 0, b), *iv = train ? rows(c->idx, 0, b) : NULL;
    clai_status st = CLAI_E_INVALID_ARG;
    if (cv != NULL && pv != NULL && (iv != NULL || !train)) {
      st = clai_conv2d(t->ctx, cv, in, c->w, c->b, &CNN_CONV);
      if (st == CLAI_OK && train) prof(t, names[i][0]);
      if (st == CLAI_OK) st = clai_max_pool2d(t->ctx, pv, iv, cv, &CNN_POOL);
      if (st == CLAI_OK && train) prof(t, names[i][1]);
    }
    clai_tensor_free(in), clai_tensor_free(cv), clai_tensor_free(iv);
    in = pv;
    if (st != CLAI_OK) {
      clai_tensor_free(in);
      fail(t, i == 0 ? "the first convolution block" : "the second convolution block", st);
      return NULL;
    }
  }
  clai_tensor *flat = reshaped(in, 2, b, CNN_FLAT, 0, 0);
  clai_tensor_free(in);
  if (flat != NULL) out = mlp_forward(t, flat, b, train);
  clai_tensor_free(flat);
  return out;
}

static int cnn_backward(trainer *t, clai_tensor *x, int64_t b) {
  clai_context *ctx = t->ctx;
  conv_layer *c1 = &t->conv[0], *c2 = &t->conv[1];
  int rc = -1;
  clai_tensor *p2 = rows(c2->p, 0, b), *dp2 = rows(c2->dp, 0, b), *flat = NULL, *dflat = NULL;
  clai_tensor *dc2 = rows(c2->dc, 0, b), *i2 = rows(c2->idx, 0, b), *p1 = rows(c1->p, 0, b);
  clai_tensor *dc1 = rows(c1->dc, 0, b), *i1 = rows(c1->idx, 0, b), *x4 = reshaped(x, 4, b, 1, 28, 28);
  clai_tensor *dp1 = NULL;
  clai_status st = CLAI_OK;
  flat = reshaped(p2, 2, b, CNN_FLAT, 0, 0);
  dflat = reshaped(dp2, 2, b, CNN_FLAT, 0, 0);
  dp1 = rows(c1->dp, 0, b);
  if (!flat || !dflat || !dc2 || !i2 || !p1 || !dc1 || !i1 || !x4 || !dp1) goto done;
  /* the dense layers, down to the gradient of the flattened p2, masked by p2 > 0 (ReLU, see above) */
  if (dense_backward(t, flat, b, dflat) != 0) goto done;
  if ((st = clai_max_pool2d_backward(ctx, dc2, dp2, i2, &CNN_POOL)) != CLAI_OK) goto err;
  prof(t, "max-pool 2 backward");
  if ((st = clai_conv2d_backward_weight(ctx, c2->gw, c2->gb, p1, dc2, &CNN_CONV)) != CLAI_OK) goto err;
  prof(t, "conv2 weight+bias grad");
  if ((st = clai_conv2d_backward_data(ctx, dp1, dc2, c2->w, &CNN_CONV)) != CLAI_OK) goto err;
  prof(t, "conv2 data grad");
  if ((st = clai_unary_backward(ctx, CLAI_RELU, dp1, dp1, p1)) != CLAI_OK) goto err;
  prof(t, "relu backward (pool 1)");
  if ((st = clai_max_pool2d_backward(ctx, dc1, dp1, i1, &CNN_POOL)) != CLAI_OK) goto err;
  prof(t, "max-pool 1 backward");
  if ((st = clai_conv2d_backward_weight(ctx, c1->gw, c1->gb, x4, dc1, &CNN_CONV)) != CLAI_OK) goto err;
  prof(t, "conv1 weight+bias grad");
  rc = 0;
  goto done;
err:
  fail(t, "the convolution backward", st);
done:
  clai_tensor_free(p2), clai_tensor_free(dp2), clai_tensor_free(flat), clai_tensor_free(dflat);
  clai_tensor_free(dc2), clai_tensor_free(i2), clai_tensor_free(p1), clai_tensor_free(dc1), clai_tensor_free(i1);
  clai_tensor_free(x4), clai_tensor_free(dp1);
  return rc;
}

static const model_ops MODELS[] = {
    {"mlp", 10, mlp_build, mlp_forward, mlp_backward},
    {"cnn", 3, cnn_build, cnn_forward, cnn_backward},
};

/* ---- shuffling ------------------------------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* The permutation of epoch e (from 1): Fisher-Yates driven by a generator keyed by (seed, e) only. */
static void permutation(int32_t *p, int64_t n, uint64_t seed, int64_t epoch) {
  uint64_t s = seed * 0x2545f4914f6cdd1dULL ^ (uint64_t)epoch * 0x9e3779b97f4a7c15ULL ^ 0x66a57c1a1ULL;
  for (int64_t i = 0; i < n; i++) p[i] = (int32_t)i;
  for (int64_t i = n - 1; i > 0; i--) {
    /* an unbiased draw in [0, i] by rejection */
    uint64_t bound = (uint64_t)i + 1, lim = UINT64_MAX - UINT64_MAX % bound, r;
    do r = splitmix64(&s);
    while (r >= lim);
    int64_t j = (int64_t)(r % bound);
    int32_t tmp = p[i];
    p[i] = p[j], p[j] = tmp;
  }
}

/* ---- data --------------------------------------------------------------------------------------------- */

static clai_tensor *upload_images(trainer *t, const mnist_set *s, int64_t n) {
  clai_tensor *x = mk(t, CLAI_DTYPE_F32, 2, n, PIXELS);
  float *buf = malloc((size_t)n * PIXELS * sizeof(float));
  if (x == NULL || buf == NULL) {
    if (buf == NULL) fprintf(stderr, "%s: out of host memory\n", t->prog);
    clai_tensor_free(x), free(buf);
    return NULL;
  }
  for (int64_t i = 0; i < n * PIXELS; i++) buf[i] = (float)s->images[i] / 255.0f;
  clai_status st = clai_tensor_write(x, buf, (size_t)n * PIXELS * sizeof(float));
  free(buf);
  if (st != CLAI_OK) {
    fail(t, "clai_tensor_write", st);
    clai_tensor_free(x);
    return NULL;
  }
  return x;
}

static int load_data(trainer *t) {
  mnist_set tr, te;
  char err[4096 + 512];
  memset(&tr, 0, sizeof tr), memset(&te, 0, sizeof te);
  if (mnist_load(t->o.data, "train", &tr, err, sizeof err) != 0 ||
      mnist_load(t->o.data, "t10k", &te, err, sizeof err) != 0) {
    fprintf(stderr, "%s: %s\n", t->prog, err);
    mnist_free(&tr);
    return -1;
  }
  int rc = -1;
  t->ntrain = t->o.train_limit > 0 && t->o.train_limit < tr.n ? t->o.train_limit : tr.n;
  t->ntest = t->o.test_limit > 0 && t->o.test_limit < te.n ? t->o.test_limit : te.n;
  t->xtrain = upload_images(t, &tr, t->ntrain);
  t->xtest = upload_images(t, &te, t->ntest);
  t->ytrain = mk(t, CLAI_DTYPE_I32, 2, t->ntrain, 1);
  t->xs = mk(t, CLAI_DTYPE_F32, 2, t->ntrain, PIXELS);
  t->ys = mk(t, CLAI_DTYPE_I32, 2, t->ntrain, 1);
  t->perm = mk(t, CLAI_DTYPE_I32, 1, t->ntrain, 0);
  t->test_logits = mk(t, CLAI_DTYPE_F32, 2, t->ntest, CLASSES);
  int32_t *lab = malloc((size_t)t->ntrain * sizeof(int32_t));
  t->test_labels = malloc((size_t)t->ntest);
  if (lab == NULL || t->test_labels == NULL) {
    fprintf(stderr, "%s: out of host memory\n", t->prog);
  } else if (t->xtrain && t->xtest && t->ytrain && t->xs && t->ys && t->perm && t->test_logits) {
    for (int64_t i = 0; i < t->ntrain; i++) lab[i] = tr.labels[i];
    memcpy(t->test_labels, te.labels, (size_t)t->ntest);
    clai_status st = clai_tensor_write(t->ytrain, lab, (size_t)t->ntrain * sizeof(int32_t));
    if (st != CLAI_OK) fail(t, "clai_tensor_write (labels)", st);
    else rc = 0;
  }
  free(lab);
  mnist_free(&tr), mnist_free(&te);
  return rc;
}

/* ---- the build helper -----------------------------------------------------------------------------------
 * On a cold kernel cache the first epoch is mostly compilation, and POCL compiles one kernel at a time per
 * process whatever the cores. So a run starts itself again as a helper (--as-build-helper DIR) that runs
 * the first epoch and its evaluation ahead of it without computing anything (clai_context_share_builds):
 * each program and kernel shape is compiled once, by whichever process gets to it first, the helper on the
 * other core while this process sets up, reads the data and then trains, waiting only for what the helper
 * is still compiling. The helper reads only the headers of the data files (its tensors have the real
 * shapes and no contents), writes nothing but the caches, and is stopped after the first epoch; on warm
 * caches it is done in a fifth of a second, during this process's set-up. One process on one device only
 * (not under mpirun, not with --devices over several), and only with two CPUs or more. */

/* The helper's data: the shapes load_data makes, without their contents. */
static int helper_data(trainer *t) {
  char err[4096 + 512];
  int64_t ntr = 0, nte = 0;
  if (mnist_count(t->o.data, "train", &ntr, err, sizeof err) != 0 ||
      mnist_count(t->o.data, "t10k", &nte, err, sizeof err) != 0) {
    fprintf(stderr, "%s: %s\n", t->prog, err);
    return -1;
  }
  t->ntrain = t->o.train_limit > 0 && t->o.train_limit < ntr ? t->o.train_limit : ntr;
  t->ntest = t->o.test_limit > 0 && t->o.test_limit < nte ? t->o.test_limit : nte;
  t->xtrain = mk(t, CLAI_DTYPE_F32, 2, t->ntrain, PIXELS);
  t->xtest = mk(t, CLAI_DTYPE_F32, 2, t->ntest, PIXELS);
  t->ytrain = mk(t, CLAI_DTYPE_I32, 2, t->ntrain, 1);
  t->xs = mk(t, CLAI_DTYPE_F32, 2, t->ntrain, PIXELS);
  t->ys = mk(t, CLAI_DTYPE_I32, 2, t->ntrain, 1);
  t->perm = mk(t, CLAI_DTYPE_I32, 1, t->ntrain, 0);
  t->test_logits = mk(t, CLAI_DTYPE_F32, 2, t->ntest, CLASSES);
  t->test_labels = calloc((size_t)t->ntest, 1);
  return t->xtrain && t->xtest && t->ytrain && t->xs && t->ys && t->perm && t->test_logits && t->test_labels ? 0 : -1;
}

/* ---- checkpoints -------------------------------------------------------------------------------------- */

static int checkpoint_entries(trainer *t, ckpt_entry *e) {
  static const char *cnames[2][2] = {{"conv1.weight", "conv1.bias"}, {"conv2.weight", "conv2.bias"}};
  int n = 0;
  for (int i = 0; i < t->nconv; i++) {
    e[n].name = cnames[i][0], e[n++].t = t->conv[i].w;
    e[n].name = cnames[i][1], e[n++].t = t->conv[i].b;
  }
  for (int i = 0; i < t->nlayers; i++) {
    e[n].name = t->pnames[2 * i], e[n++].t = t->layer[i].w;
    e[n].name = t->pnames[2 * i + 1], e[n++].t = t->layer[i].b;
  }
  e[n].name = "adam.exp_avg", e[n++].t = t->adam_m;
  e[n].name = "adam.exp_avg_sq", e[n++].t = t->adam_v;
  return n;
}

static int save(trainer *t, int64_t epoch) {
  ckpt_entry e[2 * MAX_LAYERS + 6];
  int n = checkpoint_entries(t, e);
  ckpt_meta m;
  memset(&m, 0, sizeof m);
  snprintf(m.model, sizeof m.model, "%s", t->o.model);
  m.seed = t->o.seed, m.epoch = epoch, m.step = t->step, m.batch = t->o.batch;
  char err[1024];
  if (ckpt_save(t->ctx, t->o.checkpoint, &m, e, n, err, sizeof err) != 0) {
    fprintf(stderr, "%s: saving the checkpoint: %s\n", t->prog, err);
    return -1;
  }
  return 0;
}

/* Returns the epochs already done (0 when there is nothing to resume), or -1. */
static int64_t restore(trainer *t) {
  ckpt_entry e[2 * MAX_LAYERS + 6];
  int n = checkpoint_entries(t, e);
  ckpt_meta m;
  char err[1024];
  const ckpt_expect want = {t->o.model, t->o.seed, t->o.batch, EPOCHS_MAX, t->steps_per_epoch};
  int rc = ckpt_load(t->ctx, t->o.checkpoint, &want, &m, e, n, err, sizeof err);
  if (rc == 1) {
    fprintf(t->log, "no checkpoint at %s: starting from scratch\n", t->o.checkpoint);
    return 0;
  }
  if (rc != 0) {
    fprintf(stderr, "%s: %s\n", t->prog, err);
    return -1;
  }
  t->step = m.step;
  fprintf(t->log, "resuming from %s after epoch %lld (step %lld)\n", t->o.checkpoint, (long long)m.epoch,
          (long long)m.step);
  return m.epoch;
}

/* ---- the loops ---------------------------------------------------------------------------------------- */

static void progress(trainer *t, int64_t epoch, int64_t done, int64_t steps, float loss, double t0) {
  double el = now() - t0;
  int64_t samples = done * t->o.batch > t->ntrain ? t->ntrain : done * t->o.batch;
  double sps = el > 0 ? samples / el : 0, eta = sps > 0 ? (t->ntrain - samples) / sps : 0;
  char bar[31];
  int fill = (int)(30 * done / steps);
  for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
  bar[30] = '\0';
  fprintf(t->log, "\repoch %2lld [%s] %5lld/%lld  loss %.4f  %8.0f samples/s  ETA %4.1fs ", (long long)epoch, bar,
          (long long)done, (long long)steps, loss, sps, eta);
  fflush(t->log);
}

/* build_s: what the epoch (shuffle, training, evaluation) spent building kernels, which a cold start pays
 * in its first epoch (clai_context_stats.build_seconds); it is part of the other times. */
typedef struct epoch_stats {
  double train_s, shuffle_s, eval_s, build_s, loss, acc;
} epoch_stats;

static double build_seconds(clai_context *ctx) {
  clai_context_stats s;
  return clai_context_stats_get(ctx, &s) == CLAI_OK ? s.build_seconds : 0.0;
}

static int train_epoch(trainer *t, const model_ops *m, int64_t epoch, epoch_stats *es) {
  clai_context *ctx = t->ctx;
  const int64_t n = t->ntrain, B = t->o.batch, steps = t->steps_per_epoch;
  /* Shuffle: the permutation goes to the device, the gather happens there. */
  double ts = now();
  int32_t *p = malloc((size_t)n * sizeof(int32_t));
  float *losses = malloc((size_t)steps * sizeof(float));
  if (p == NULL || losses == NULL) {
    free(p), free(losses);
    fprintf(stderr, "%s: out of host memory\n", t->prog);
    return -1;
  }
  permutation(p, n, t->o.seed, epoch);
  clai_status st = clai_tensor_write(t->perm, p, (size_t)n * sizeof(int32_t));
  free(p);
  if (st == CLAI_OK) st = clai_gather_rows(ctx, t->xs, t->xtrain, t->perm);
  if (st == CLAI_OK) st = clai_gather_rows(ctx, t->ys, t->ytrain, t->perm);
  if (st == CLAI_OK) st = clai_sync(ctx);
  if (st != CLAI_OK) {
    free(losses);
    return fail(t, "shuffling", st);
  }
  es->shuffle_s = now() - ts;

  const clai_adam_params adam = {t->o.lr, 0.9f, 0.999f, 1e-8f, 0.0f};
  double t0 = now();
  int rc = -1;
  t->prof_last = t0;
  for (int64_t s = 0; s < steps; s++) {
    /* The global batch is rows [r0, r1); this rank takes rows [g0, g0 + b) of it (all of them on one rank). */
    int64_t r0 = s * B, r1 = r0 + B < n ? r0 + B : n, gb = r1 - r0;
    int64_t g0 = r0 + gb * t->rank / t->nranks, b = r0 + gb * (t->rank + 1) / t->nranks - g0;
    clai_tensor *x = NULL, *y = NULL, *y2 = NULL, *loss = NULL, *logits = NULL, *dl = NULL;
    int64_t yshape[1] = {b};
    if (b == 0) { /* a short last batch with fewer rows than ranks: nothing to add to the sum */
      if ((st = clai_fill(ctx, t->grads, 0.0)) != CLAI_OK) {
        fail(t, "clai_fill (an empty share of the batch)", st);
        goto step_fail;
      }
    } else {
      x = rows(t->xs, g0, g0 + b), y2 = rows(t->ys, g0, g0 + b);
      if (x == NULL || y2 == NULL || clai_tensor_reshape(y2, &y, 1, yshape) != CLAI_OK) goto step_fail;
      if ((loss = rows(t->losses, s, s + 1)) == NULL) goto step_fail;
      if ((logits = m->forward(t, x, b, 1)) == NULL) goto step_fail;
      if ((dl = rows(t->dlogits, 0, b)) == NULL) goto step_fail;
      if ((st = clai_loss_cross_entropy(ctx, loss, dl, logits, y, -100)) != CLAI_OK) {
        fail(t, "clai_loss_cross_entropy", st);
        goto step_fail;
      }
      /* The loss is the mean over this rank's rows; scaled by its share of the global batch, the ranks'
       * gradients sum to the gradient of the global batch's mean. */
      if (b != gb && (st = clai_scale(ctx, dl, dl, (float)((double)b / (double)gb))) != CLAI_OK) {
        fail(t, "clai_scale (the share of the batch)", st);
        goto step_fail;
      }
      prof(t, "cross-entropy");
      if (m->backward(t, x, b) != 0) goto step_fail;
    }
    if (t->red != NULL && dp_reducer_finish(t->red) != 0) {
      fprintf(stderr, "%s: reducing the gradient: %s\n", t->prog, dp_reducer_error(t->red));
      goto step_fail;
    }
    prof(t, "gradient reduction");
    t->step++;
    if ((st = clai_optim_adam(ctx, t->params, t->adam_m, t->adam_v, t->grads, t->step, &adam)) != CLAI_OK) {
      fail(t, "clai_optim_adam", st);
      goto step_fail;
    }
    prof(t, "adam");
    if (t->tty && b > 0 && ((s + 1) % PROGRESS_EVERY == 0 || s + 1 == steps)) {
      float l = NAN;
      if ((st = clai_tensor_read(loss, &l, sizeof l)) != CLAI_OK) {
        fail(t, "reading the loss", st);
        goto step_fail;
      }
      progress(t, epoch, s + 1, steps, l, t0);
    }
    clai_tensor_free(x), clai_tensor_free(y), clai_tensor_free(y2), clai_tensor_free(loss);
    clai_tensor_free(logits), clai_tensor_free(dl);
    prof(t, "host (views, progress)");
    continue;
  step_fail:
    clai_tensor_free(x), clai_tensor_free(y), clai_tensor_free(y2), clai_tensor_free(loss);
    clai_tensor_free(logits), clai_tensor_free(dl);
    free(losses);
    return -1;
  }
  /* The end of the loop: the losses of every step (this waits for the last one). */
  if ((st = clai_tensor_read(t->losses, losses, (size_t)steps * sizeof(float))) != CLAI_OK) {
    free(losses);
    return fail(t, "reading the losses", st);
  }
  es->train_s = now() - t0;
  if (t->tty) fputs("\r\033[K", t->log); /* the epoch line replaces the bar */
  for (int i = 0; i < t->prof_n; i++) {
    fprintf(t->log, "  profile: %-24s %8.1f us/step\n", t->prof_name[i], t->prof_sum[i] / steps * 1e6);
    t->prof_sum[i] = 0;
  }
  clai_kernel_profile kp[12];
  int nk = clai_profile_get(t->ctx, kp, 12); /* -1 unless CLAI_PROFILE=1 */
  for (int i = 0; i < nk && i < 12; i++)
    fprintf(t->log, "  kernel: %-28s %6llu launches %9.1f us/step\n", kp[i].kernel,
            (unsigned long long)kp[i].launches, kp[i].seconds / steps * 1e6);
  if (nk >= 0) clai_profile_reset(t->ctx);
  /* Each step's loss over the global batch: the ranks' means weighted by their rows, summed over ranks
   * (on one rank, loss * rows exactly, so the same bits as before). */
  double *w = calloc((size_t)steps, sizeof *w);
  char err[1024];
  if (w == NULL) {
    free(losses);
    fprintf(stderr, "%s: out of host memory\n", t->prog);
    return -1;
  }
  for (int64_t s = 0; s < steps; s++) {
    int64_t r0 = s * B, gb = (s + 1) * B < n ? B : n - r0;
    int64_t g0 = r0 + gb * t->rank / t->nranks, b = r0 + gb * (t->rank + 1) / t->nranks - g0;
    w[s] = b > 0 ? (double)losses[s] * (double)b : 0.0;
  }
  if (dp_sum_f64(t->comm, w, (size_t)steps, err, sizeof err) != 0) {
    fprintf(stderr, "%s: summing the losses over the ranks: %s\n", t->prog, err);
    free(losses), free(w);
    return -1;
  }
  double sum = 0;
  for (int64_t s = 0; s < steps; s++) {
    int64_t gb = (s + 1) * B < n ? B : n - s * B;
    sum += w[s];
    if (t->loss_log != NULL)
      fprintf(t->loss_log, "%lld %lld %.9g\n", (long long)epoch, (long long)(s + 1), (double)(float)(w[s] / (double)gb));
  }
  if (t->loss_log != NULL) fflush(t->loss_log);
  es->loss = sum / (double)n;
  rc = 0;
  free(losses), free(w);
  return rc;
}

/* Each rank evaluates its share of the test set, rows [e0, e1); the counts of correct answers are summed. */
static int evaluate(trainer *t, const model_ops *m, double *acc, double *secs) {
  double t0 = now();
  const int64_t e0 = t->ntest * t->rank / t->nranks, e1 = t->ntest * (t->rank + 1) / t->nranks;
  for (int64_t r0 = e0; r0 < e1; r0 += EVAL_BATCH) {
    int64_t r1 = r0 + EVAL_BATCH < e1 ? r0 + EVAL_BATCH : e1;
    clai_tensor *x = rows(t->xtest, r0, r1), *dst = rows(t->test_logits, r0, r1), *lg = NULL;
    clai_status st = CLAI_E_INVALID_ARG;
    if (x != NULL && dst != NULL && (lg = m->forward(t, x, r1 - r0, 0)) != NULL) st = clai_copy(t->ctx, dst, lg);
    clai_tensor_free(x), clai_tensor_free(dst), clai_tensor_free(lg);
    if (st != CLAI_OK) return fail(t, "evaluation", st);
  }
  float *lg = malloc((size_t)(e1 - e0) * CLASSES * sizeof(float) + 1);
  clai_tensor *mine = rows(t->test_logits, e0, e1);
  if (lg == NULL || mine == NULL) {
    free(lg), clai_tensor_free(mine);
    return -1;
  }
  clai_status st = clai_tensor_read(mine, lg, (size_t)(e1 - e0) * CLASSES * sizeof(float));
  clai_tensor_free(mine);
  if (st != CLAI_OK) {
    free(lg);
    return fail(t, "reading the test logits", st);
  }
  double correct = 0;
  for (int64_t i = 0; i < e1 - e0; i++) {
    int best = 0;
    for (int c = 1; c < CLASSES; c++)
      if (lg[i * CLASSES + c] > lg[i * CLASSES + best]) best = c;
    correct += best == t->test_labels[e0 + i];
  }
  free(lg);
  char err[1024];
  if (dp_sum_f64(t->comm, &correct, 1, err, sizeof err) != 0) {
    fprintf(stderr, "%s: summing the test accuracy over the ranks: %s\n", t->prog, err);
    return -1;
  }
  *acc = correct / (double)t->ntest;
  *secs = now() - t0;
  return 0;
}

/* ---- options and main --------------------------------------------------------------------------------- */

/* s as a JSON string body: quotes, backslashes and control characters escaped. */
static void json_str(FILE *f, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
}

static void usage(const char *prog, FILE *f) {
  fprintf(f,
          "usage: %s [options]   train a classifier on Fashion-MNIST with libclai\n"
          "  --model mlp|cnn    mlp: 784-256-128-10 with ReLU (default); cnn: conv 5x5 32 + ReLU + max-pool 2,\n"
          "                     conv 5x5 64 + ReLU + max-pool 2, 3136-1024-10 with ReLU\n"
          "  --epochs N         epochs to train (default 10 for mlp, 3 for cnn); with --resume, the total\n"
          "                     to reach\n"
          "  --batch N          batch size (default 128)\n"
          "  --lr X             Adam's learning rate (default 1e-3; betas 0.9/0.999, eps 1e-8)\n"
          "  --seed N           initialisation and shuffling seed (default 0)\n"
          "  --train-limit N    train on the first N samples only (default: all 60000)\n"
          "  --test-limit N     evaluate on the first N test images only (default: all 10000)\n"
          "  --data DIR         the gzip'd IDX files (default %s,\n"
          "                     from Debian's dataset-fashion-mnist package)\n"
          "  --checkpoint PATH  save the training state there after every epoch (default: none)\n"
          "  --resume           continue from the checkpoint and keep saving there (PATH, default\n"
          "                     fashion-mnist-MODEL.ckpt; a missing file starts from scratch); the\n"
          "                     run must have the checkpoint's --model, --seed, --batch and training set\n"
          "  --json             a JSON summary on stdout, progress on stderr\n"
          "  --loss-log PATH    write every step's loss there (\"EPOCH STEP LOSS\" lines)\n"
          "  --no-build-helper  do not start the second process that compiles the first epoch's kernels\n"
          "                     beside this one on a cold cache (it runs the epoch ahead without\n"
          "                     computing, see clai_context_share_builds; one process, one device only)\n"
          "  --devices LIST     train on several devices at once (indices from `clai devices`, e.g. 0,1):\n"
          "                     one thread per device, each on its share of every batch, the gradients\n"
          "                     summed before each step; under mpirun, the devices the ranks of one\n"
          "                     machine take in turn\n"
          "Under mpirun (a build with MPI), each rank trains on its share of every batch of --batch samples\n"
          "on its own device and the gradients are summed with MPI_Allreduce; rank 0 reports and saves.\n",
          prog, MNIST_DEFAULT_DIR);
}

static int parse_int(const char *prog, const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
    fprintf(stderr, "%s: %s wants an integer in [%lld, %lld], not '%s'\n", prog, opt, (long long)lo, (long long)hi,
            s);
    return -1;
  }
  *out = v;
  return 0;
}

static int parse(const char *prog, int argc, char **argv, options *o) {
  memset(o, 0, sizeof *o);
  o->model = "mlp", o->data = MNIST_DEFAULT_DIR, o->batch = 128, o->lr = 1e-3f, o->epochs = -1;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(prog, stdout);
      exit(0);
    }
    if (strcmp(a, "--json") == 0) {
      o->json = 1;
      continue;
    }
    if (strcmp(a, "--resume") == 0) {
      o->resume = 1;
      continue;
    }
    if (strcmp(a, "--no-build-helper") == 0) {
      o->no_helper = 1;
      continue;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "%s: unknown option or missing value: '%s'\n", prog, a);
      usage(prog, stderr);
      return -1;
    }
    const char *v = argv[++i];
    int64_t x;
    if (strcmp(a, "--model") == 0) o->model = v;
    else if (strcmp(a, "--data") == 0) o->data = v;
    else if (strcmp(a, "--checkpoint") == 0) o->checkpoint = v;
    else if (strcmp(a, "--devices") == 0) o->devices = v;
    else if (strcmp(a, "--loss-log") == 0) o->loss_log = v;
    else if (strcmp(a, "--as-build-helper") == 0) o->as_helper = v;
    else if (strcmp(a, "--epochs") == 0) {
      if (parse_int(prog, a, v, 0, EPOCHS_MAX, &x) != 0) return -1;
      o->epochs = (int)x;
    } else if (strcmp(a, "--batch") == 0) {
      if (parse_int(prog, a, v, 1, 65536, &x) != 0) return -1;
      o->batch = (int)x;
    } else if (strcmp(a, "--seed") == 0) {
      if (parse_int(prog, a, v, 0, INT64_MAX, &x) != 0) return -1;
      o->seed = (uint64_t)x;
    } else if (strcmp(a, "--train-limit") == 0) {
      if (parse_int(prog, a, v, 1, INT32_MAX, &x) != 0) return -1;
      o->train_limit = x;
    } else if (strcmp(a, "--test-limit") == 0) {
      if (parse_int(prog, a, v, 1, INT32_MAX, &x) != 0) return -1;
      o->test_limit = x;
    } else if (strcmp(a, "--lr") == 0) {
      char *end;
      o->lr = strtof(v, &end);
      if (end == v || *end != '\0' || !(o->lr >= 0) || !isfinite(o->lr)) {
        fprintf(stderr, "%s: --lr wants a number >= 0, not '%s'\n", prog, v);
        return -1;
      }
    } else {
      fprintf(stderr, "%s: unknown option '%s'\n", prog, a);
      usage(prog, stderr);
      return -1;
    }
  }
  return 0;
}

static void free_trainer(trainer *t) {
  clai_tensor *all[] = {t->xtrain, t->ytrain, t->xtest, t->xs, t->ys, t->perm, t->params, t->grads,
                        t->adam_m, t->adam_v, t->ones, t->losses, t->test_logits};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) clai_tensor_free(all[i]);
  for (int i = 0; i < MAX_LAYERS; i++) {
    dense *l = &t->layer[i];
    clai_tensor_free(l->wt), clai_tensor_free(l->w), clai_tensor_free(l->b), clai_tensor_free(l->gwt);
    clai_tensor_free(l->gb);
    clai_tensor_free(l->y), clai_tensor_free(l->dy), clai_tensor_free(l->ey);
  }
  for (int i = 0; i < 2; i++) {
    conv_layer *c = &t->conv[i];
    clai_tensor *all[] = {c->w, c->b, c->gw, c->gb, c->c, c->p, c->idx, c->dp, c->dc};
    for (size_t j = 0; j < sizeof all / sizeof all[0]; j++) clai_tensor_free(all[j]);
  }
  free(t->test_labels);
  dp_reducer_free(t->red);
  clai_context_free(t->ctx);
  if (t->devnull != NULL) fclose(t->devnull);
  if (t->loss_log != NULL) fclose(t->loss_log);
}

/* Rank 0's checkpoint to every rank: rank 0 reads the file (so it need not be on a shared file system),
 * then the step count and, when there was one, the parameters and Adam's state go to the others. Returns
 * the epochs already done (0: none) or -1 on every rank. */
static int64_t restore_all(trainer *t) {
  int64_t done = 0;
  char err[1024];
  if (t->rank == 0) done = restore(t);
  if (t->nranks == 1) return done;
  if (dp_agree(t->comm, done >= 0, "the checkpoint cannot be resumed (see rank 0's message)", err, sizeof err) != 0) {
    fprintf(stderr, "%s: stopping: %s\n", t->prog, err);
    return -1;
  }
  int64_t hdr[2] = {done, t->step};
  if (dp_bcast(t->comm, hdr, sizeof hdr, 0, err, sizeof err) != 0) {
    fprintf(stderr, "%s: %s\n", t->prog, err);
    return -1;
  }
  done = hdr[0], t->step = hdr[1];
  clai_tensor *state[3] = {t->params, t->adam_m, t->adam_v};
  for (int i = 0; i < 3 && done > 0; i++) {
    void *p = NULL;
    clai_status st = clai_tensor_map(state[i], t->rank == 0 ? CLAI_MAP_READ : CLAI_MAP_WRITE, &p);
    if (st != CLAI_OK) {
      fail(t, "clai_tensor_map (the resumed state)", st);
      dp_fail(t->comm, "mapping the resumed state failed");
      return -1;
    }
    int rc = dp_bcast(t->comm, p, (size_t)t->nparams * sizeof(float), 0, err, sizeof err);
    if ((st = clai_tensor_unmap(state[i])) != CLAI_OK || rc != 0) {
      fprintf(stderr, "%s: sending the resumed state: %s\n", t->prog, rc != 0 ? err : clai_errmsg(t->ctx));
      return -1;
    }
  }
  return done;
}

/* The context of this rank: the device asked for, else the best one; where several ranks share a machine
 * and it has several devices of the best one's type, local rank r takes the r-th of them (in turn). */
static clai_status open_context(trainer *t, const char *device, char *err, size_t cap) {
  clai_context_params p;
  memset(&p, 0, sizeof p);
  p.device = device;
  if (t->o.as_helper != NULL) p.eager = -2; /* the helper needs no copy kernels to start */
  clai_status st = clai_context_init_ex(&t->ctx, &p, err, cap);
  if (st != CLAI_OK || device != NULL || dp_local_size(t->comm) < 2) return st;
  clai_device_info chosen, d;
  if (clai_context_device_info(t->ctx, -1, &chosen) != CLAI_OK) return CLAI_OK;
  int same[64], ns = 0, n = clai_context_device_count(t->ctx);
  for (int i = 0; i < n && ns < 64; i++)
    if (clai_context_device_info(t->ctx, i, &d) == CLAI_OK && d.type == chosen.type) same[ns++] = d.index;
  if (ns < 2 || same[dp_local_rank(t->comm) % ns] == chosen.index) return CLAI_OK;
  char idx[16];
  snprintf(idx, sizeof idx, "%d", same[dp_local_rank(t->comm) % ns]);
  clai_context_free(t->ctx);
  t->ctx = NULL;
  p.device = idx;
  return clai_context_init_ex(&t->ctx, &p, err, cap);
}

/* 1 when every rank holds the same parameters (they must: the same sums, the same steps); a cheap check
 * at the end of a run, since ranks that drifted apart would train different models silently. */
static int ranks_agree(trainer *t) {
  if (t->nranks == 1) return 1;
  void *p = NULL;
  uint64_t h = 1469598103934665603ULL, *all = calloc((size_t)t->nranks, sizeof *all);
  char err[1024];
  if (all == NULL || clai_tensor_map(t->params, CLAI_MAP_READ, &p) != CLAI_OK) {
    free(all);
    dp_fail(t->comm, "checking the parameters failed");
    return 0;
  }
  const unsigned char *b = p;
  for (size_t i = 0; i < (size_t)t->nparams * sizeof(float); i++) h = (h ^ b[i]) * 1099511628211ULL;
  clai_tensor_unmap(t->params);
  int ok = dp_allgather(t->comm, &h, all, sizeof h, err, sizeof err) == 0;
  for (int r = 1; ok && r < t->nranks; r++)
    if (all[r] != all[0]) {
      fprintf(stderr, "%s: the parameters of rank %d differ from rank 0's\n", t->prog, r);
      ok = 0;
    }
  free(all);
  return ok;
}

static int train_run(const options *o, const char *prog0, dp_comm *comm, const char *device) {
  trainer t;
  memset(&t, 0, sizeof t);
  t.o = *o;
  t.comm = comm, t.rank = dp_rank(comm), t.nranks = dp_size(comm);
  char prog[128];
  if (t.nranks > 1) snprintf(prog, sizeof prog, "%s [rank %d of %d]", prog0, t.rank, t.nranks);
  else snprintf(prog, sizeof prog, "%s", prog0);
  t.prog = prog;
  const model_ops *m = NULL;
  for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++)
    if (strcmp(MODELS[i].name, t.o.model) == 0) m = &MODELS[i];
  t.log = t.o.json ? stderr : stdout;
  if (t.rank != 0 && (t.devnull = fopen("/dev/null", "w")) != NULL) t.log = t.devnull;
  t.tty = t.rank == 0 && isatty(fileno(t.log));
  const char *pe = getenv("FMNIST_PROFILE");
  t.profile = pe != NULL && strcmp(pe, "1") == 0;

  char err[4096], why[4096 + 64] = "";
  /* The helper starts first, so that it builds its context beside this one's: it is done in a fifth of a
   * second when the caches are warm, and never slows an epoch then. */
  build_helper helper = BUILD_HELPER_NONE;
  if (t.o.as_helper == NULL && t.nranks == 1 && !t.o.no_helper && !dp_mpi_launched()) build_helper_start(&helper);
  double tinit = now();
  int ok = 1, rc = 1;
  clai_status st = open_context(&t, device, err, sizeof err);
  if (st != CLAI_OK) {
    snprintf(why, sizeof why, "no OpenCL context%s%s: %s: %s", device ? " on device " : "", device ? device : "",
             clai_status_name(st), err);
    fprintf(stderr, "%s: %s\n", prog, why);
    ok = 0;
  }
  tinit = now() - tinit;
  if (ok && t.o.as_helper != NULL && clai_context_share_builds(t.ctx, t.o.as_helper, CLAI_SHARE_HELP) != CLAI_OK) {
    fprintf(stderr, "%s: --as-build-helper: %s\n", prog, clai_errmsg(t.ctx));
    ok = 0;
  }
  if (ok) build_helper_lead(&helper, t.ctx);
  clai_device_info dev;
  memset(&dev, 0, sizeof dev);
  double tload = now();
  if (ok) {
    clai_context_device_info(t.ctx, -1, &dev);
    ok = 0;
    snprintf(why, sizeof why, "setting up the training failed (see its message)");
    if (t.rank == 0 && t.o.loss_log != NULL && (t.loss_log = fopen(t.o.loss_log, "w")) == NULL)
      snprintf(why, sizeof why, "cannot write %s: %s", t.o.loss_log, strerror(errno));
    else if ((t.o.as_helper != NULL ? helper_data(&t) : load_data(&t)) == 0) {
      tload = now() - tload;
      t.steps_per_epoch = (t.ntrain + t.o.batch - 1) / t.o.batch;
      if ((t.ones = mk(&t, CLAI_DTYPE_F32, 2, 1, t.o.batch)) != NULL &&
          (t.losses = mk(&t, CLAI_DTYPE_F32, 1, t.steps_per_epoch, 0)) != NULL &&
          clai_fill(t.ctx, t.ones, 1.0) == CLAI_OK && m->build(&t) == 0 && clai_fill(t.ctx, t.adam_m, 0.0) == CLAI_OK &&
          clai_fill(t.ctx, t.adam_v, 0.0) == CLAI_OK)
        ok = 1;
      if (ok && t.nranks > 1 && dp_reducer_init(comm, t.grads, 0, &t.red, err, sizeof err) != 0) {
        snprintf(why, sizeof why, "the gradient reduction: %s", err);
        ok = 0;
      }
    } else {
      snprintf(why, sizeof why, "loading the data failed (see its message)");
    }
    if (!ok && t.nranks > 1) fprintf(stderr, "%s: %s\n", prog, why);
  }
  /* Every rank set up, or all stop with the reason. */
  if (t.nranks > 1 && dp_agree(comm, ok, why, err, sizeof err) != 0) {
    fprintf(stderr, "%s: stopping: %s\n", prog, err);
    goto out;
  }
  if (!ok) goto out;
  int64_t first = 1;
  if (t.o.resume) {
    int64_t done = restore_all(&t);
    if (done < 0) goto out;
    first = done + 1;
  }
  /* Every rank's device, for the log and the JSON summary. */
  char (*devs)[320] = calloc((size_t)t.nranks, sizeof *devs);
  char mine[320];
  snprintf(mine, sizeof mine, "%s / %s", dev.platform, dev.name);
  if (devs == NULL || dp_allgather(comm, mine, devs, sizeof mine, err, sizeof err) != 0) {
    fprintf(stderr, "%s: gathering the devices: %s\n", prog, devs == NULL ? "out of host memory" : err);
    free(devs);
    goto out;
  }
  if (t.nranks == 1)
    fprintf(t.log, "device: %s / %s%s\n", dev.platform, dev.name, dev.fallback ? " [CPU fallback]" : "");
  else
    for (int r = 0; r < t.nranks; r++)
      fprintf(t.log, "rank %d (%s): %s\n", r, dp_backend(comm), devs[r]);
  fprintf(t.log, "model %s (%lld parameters), %lld training samples, batch %d%s, %d epochs, seed %llu "
                 "(start-up %.2fs, data %.2fs, building kernels so far %.2fs%s)\n",
          m->name, (long long)t.nparams, (long long)t.ntrain, t.o.batch, t.nranks > 1 ? " (split over the ranks)" : "",
          t.o.epochs, (unsigned long long)t.o.seed, tinit, tload, build_seconds(t.ctx),
          helper.pid > 0 ? ", with a build helper" : "");
  if (t.o.resume && first > t.o.epochs) fprintf(t.log, "nothing to do: the checkpoint has %lld epochs\n", (long long)first - 1);

  epoch_stats *hist = calloc((size_t)t.o.epochs + 1, sizeof *hist);
  if (hist == NULL) {
    free(devs);
    goto out;
  }
  for (int64_t e = first; e <= t.o.epochs && ok; e++) {
    epoch_stats *es = &hist[e];
    const double built = build_seconds(t.ctx);
    if (train_epoch(&t, m, e, es) != 0 || evaluate(&t, m, &es->acc, &es->eval_s) != 0) {
      if (t.nranks > 1) dp_fail(comm, "training failed (see its message)");
      ok = 0;
      break;
    }
    es->build_s = build_seconds(t.ctx) - built;
    build_helper_stop(&helper, t.ctx); /* the first epoch compiled everything a run needs */
    fprintf(t.log, "epoch %2lld  train %6.2fs  %8.0f samples/s  loss %.4f  test accuracy %.4f  (eval %.2fs, "
                   "shuffle %.2fs, building kernels %.2fs of these)\n",
            (long long)e, es->train_s, t.ntrain / es->train_s, es->loss, es->acc, es->eval_s, es->shuffle_s,
            es->build_s);
    fflush(t.log);
    int saved = !(t.rank == 0 && t.o.checkpoint != NULL && save(&t, e) != 0);
    if (t.nranks > 1 && dp_agree(comm, saved, "saving the checkpoint failed", err, sizeof err) != 0) {
      fprintf(stderr, "%s: stopping: %s\n", prog, err);
      ok = 0;
    } else if (!saved) {
      ok = 0;
    }
  }
  if (ok && !ranks_agree(&t)) ok = 0;
  if (ok && first <= t.o.epochs) {
    double best = 0, secs = 0;
    for (int64_t e = first; e <= t.o.epochs; e++) {
      secs += hist[e].train_s;
      if (t.ntrain / hist[e].train_s > best) best = t.ntrain / hist[e].train_s;
    }
    fprintf(t.log, "done: test accuracy %.4f after epoch %d; training %.0f samples/s on average, %.0f in the best epoch\n",
            hist[t.o.epochs].acc, t.o.epochs, (double)t.ntrain * (double)(t.o.epochs - first + 1) / secs, best);
  }
  if (ok && t.o.json && t.rank == 0) {
    printf("{\n \"device\": \"");
    json_str(stdout, dev.platform);
    printf(" / ");
    json_str(stdout, dev.name);
    printf("\",\n \"ranks\": %d,\n \"parallel\": \"%s\",\n \"devices\": [", t.nranks, dp_backend(comm));
    for (int r = 0; r < t.nranks; r++) {
      printf("%s\"", r ? ", " : "");
      json_str(stdout, devs[r]);
      printf("\"");
    }
    printf("],\n \"model\": \"%s\",\n \"params\": %lld,\n \"batch\": %d,\n"
           " \"seed\": %llu,\n \"lr\": %g,\n \"n_train\": %lld,\n \"n_test\": %lld,\n \"eval_batch\": %d,\n"
           " \"epochs_total\": %d,\n \"first_epoch\": %lld,\n"
           " \"epochs\": [",
           m->name, (long long)t.nparams, t.o.batch, (unsigned long long)t.o.seed,
           (double)t.o.lr, (long long)t.ntrain, (long long)t.ntest, EVAL_BATCH, t.o.epochs, (long long)first);
    for (int64_t e = first; e <= t.o.epochs; e++) {
      epoch_stats *es = &hist[e];
      char loss[32];
      if (isfinite(es->loss)) snprintf(loss, sizeof loss, "%.9g", es->loss);
      else snprintf(loss, sizeof loss, "null"); /* JSON has no NaN */
      printf("%s\n  {\"epoch\": %lld, \"train_s\": %.6f, \"train_sps\": %.1f, \"loss\": %s, \"test_acc\": %.4f, "
             "\"eval_s\": %.6f, \"shuffle_s\": %.6f, \"build_s\": %.6f}",
             e > first ? "," : "", (long long)e, es->train_s, t.ntrain / es->train_s, loss, es->acc, es->eval_s,
             es->shuffle_s, es->build_s);
    }
    printf("\n ]\n}\n");
    fflush(stdout);
  }
  free(hist), free(devs);
  rc = ok ? 0 : 1;
out:
  build_helper_stop(&helper, t.ctx);
  free_trainer(&t);
  return rc;
}

/* --devices LIST: up to 64 comma-separated device indices; returns how many, or -1 with a message. */
static int parse_devices(const char *prog, const char *s, int *idx, int max) {
  int n = 0;
  const char *p = s;
  for (;;) {
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (end == p || errno != 0 || v < 0 || v > 9999 || (*end != ',' && *end != '\0') || n == max) {
      fprintf(stderr, "%s: --devices wants device indices from `clai devices` separated by commas (at most %d), "
                      "not '%s'\n",
              prog, max, s);
      return -1;
    }
    idx[n++] = (int)v;
    if (*end == '\0') return n;
    p = end + 1;
  }
}

/* Ranks sharing one machine share its cores: unless the user set it, each rank's POCL CPU device gets
 * cores / ranks threads (it would otherwise start one per core in every rank). No effect on GPUs. */
static void share_cpu_threads(int ranks_here) {
  if (ranks_here < 2 || getenv("POCL_MAX_PTHREAD_COUNT") != NULL) return;
  long cores = sysconf(_SC_NPROCESSORS_ONLN), per = cores > 0 ? cores / ranks_here : 1;
  char v[32];
  snprintf(v, sizeof v, "%ld", per > 0 ? per : 1);
  setenv("POCL_MAX_PTHREAD_COUNT", v, 0);
}

typedef struct thread_run {
  const options *o;
  const char *prog;
  dp_comm *comm;
  char device[16];
  int rc;
} thread_run;

static void *thread_main(void *arg) {
  thread_run *r = arg;
  r->rc = train_run(r->o, r->prog, r->comm, r->device);
  return NULL;
}

/* One thread per device of --devices, each a rank of a threads group. */
static int train_threads(const options *o, const char *prog, const int *idx, int n) {
  dp_threads *th = dp_threads_new(n);
  thread_run *runs = calloc((size_t)n, sizeof *runs);
  pthread_t *tids = calloc((size_t)n, sizeof *tids);
  int rc = 1, started = 0;
  if (th == NULL || runs == NULL || tids == NULL) {
    fprintf(stderr, "%s: out of host memory\n", prog);
    goto done;
  }
  share_cpu_threads(n);
  for (int r = 0; r < n; r++) {
    runs[r].o = o, runs[r].prog = prog, runs[r].rc = 1;
    snprintf(runs[r].device, sizeof runs[r].device, "%d", idx[r]);
    if ((runs[r].comm = dp_threads_comm(th, r)) == NULL) {
      fprintf(stderr, "%s: out of host memory\n", prog);
      break;
    }
  }
  for (int r = 0; r < n && runs[n - 1].comm != NULL; r++) {
    if (pthread_create(&tids[r], NULL, thread_main, &runs[r]) != 0) {
      fprintf(stderr, "%s: cannot start the thread of device %d\n", prog, idx[r]);
      dp_fail(runs[r].comm, "a thread could not be started");
      break;
    }
    started++;
  }
  rc = started == n ? 0 : 1;
  for (int r = 0; r < started; r++) {
    pthread_join(tids[r], NULL);
    if (runs[r].rc > rc) rc = runs[r].rc;
  }
done:
  for (int r = 0; runs != NULL && r < n; r++) dp_comm_free(runs[r].comm);
  free(runs), free(tids);
  dp_threads_free(th);
  return rc;
}

int fmnist_train_main(const char *prog, int argc, char **argv) {
  options o;
  if (parse(prog, argc, argv, &o) != 0) return 2;
  const model_ops *m = NULL;
  for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++)
    if (strcmp(MODELS[i].name, o.model) == 0) m = &MODELS[i];
  if (m == NULL) {
    fprintf(stderr, "%s: unknown model '%s' (available: mlp, cnn)\n", prog, o.model);
    return 2;
  }
  if (o.epochs < 0) o.epochs = m->default_epochs;
  char default_ckpt[64];
  if (o.resume && o.checkpoint == NULL) {
    snprintf(default_ckpt, sizeof default_ckpt, "fashion-mnist-%s.ckpt", m->name);
    o.checkpoint = default_ckpt;
  }
  int idx[64], nd = 0;
  if (o.devices != NULL && (nd = parse_devices(prog, o.devices, idx, 64)) < 0) return 2;
  char dev[16];
  if (o.as_helper != NULL) { /* the first epoch only, on the one device, and no files but the caches */
    if (nd > 1) return 2;
    o.epochs = 1, o.resume = 0, o.json = 0, o.checkpoint = NULL, o.loss_log = NULL;
    const pid_t parent = getppid();
    dp_comm *one = dp_single();
    if (nd == 1) snprintf(dev, sizeof dev, "%d", idx[0]);
    int rc = train_run(&o, prog, one, nd == 1 ? dev : NULL);
    dp_comm_free(one);
    build_helper_orphaned(o.as_helper, parent);
    return rc;
  }
  if (dp_mpi_launched()) {
    char err[1024];
    dp_comm *comm = NULL;
    if (!dp_mpi_built()) {
      const char *size = getenv("OMPI_COMM_WORLD_SIZE");
      if (size != NULL && strcmp(size, "1") != 0) {
        fprintf(stderr, "%s: started by mpirun with %s ranks, but this build has no MPI support: every rank would "
                        "train alone (install Debian's libopenmpi-dev, configure and build again)\n",
                prog, size);
        return 1;
      }
    } else if (dp_mpi_init(&argc, &argv, &comm, err, sizeof err) != 0) {
      fprintf(stderr, "%s: %s\n", prog, err);
      return 1;
    }
    if (comm != NULL) {
      share_cpu_threads(dp_local_size(comm));
      if (nd > 0) snprintf(dev, sizeof dev, "%d", idx[dp_local_rank(comm) % nd]);
      int rc = train_run(&o, prog, comm, nd > 0 ? dev : NULL);
      dp_comm_free(comm);
      return rc;
    }
  }
  if (nd > 1) return train_threads(&o, prog, idx, nd);
  dp_comm *one = dp_single();
  if (nd == 1) snprintf(dev, sizeof dev, "%d", idx[0]);
  int rc = train_run(&o, prog, one, nd == 1 ? dev : NULL);
  dp_comm_free(one);
  return rc;
}
