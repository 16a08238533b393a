/* loss.cl - softmax cross-entropy over integer labels and mean squared error, with their gradients.
 *
 * Layout: logits [N, C] and the gradient as (row stride, column stride, offset) in elements, labels [N] as
 * (stride, offset); MSE operands through clai_index (0 = x, 1 = y, 2 = grad). f16 is storage only.
 * Work mapping: cross-entropy has one work-item per row (a single online pass for max and sum of
 * exponentials, a second pass for the gradient); MSE and the loss sums give work-item j one fixed share of
 * the elements (CLAI_PART_RANGE) with P chosen by the host from the size and the device class alone, and
 * one work-group adds the P partials in a fixed order and tree, so the result is the same on every run.
 *
 * Labels: a row whose label equals ignore_index contributes nothing (loss 0, gradient 0) and is not
 * counted in the mean, as in PyTorch. Any other label outside [0, C) is never used as an index: the row's
 * loss and gradient are NaN, so the mean loss is NaN.
 *
 * Special logits, as PyTorch: a -inf logit weighs 0 (it adds nothing to the running sum, where exp(-inf -
 * -inf) would have made it NaN while the maximum is still -inf); a NaN or +inf logit, or a row of nothing
 * but -inf, makes the row's loss and gradient NaN. The row's loss is log(s) - (x[label] - m) with m the
 * maximum and s = sum(exp(x - m)): the large parts cancel exactly before log(s) is added ((m + log(s)) -
 * x[label] lost 2.4e-4 at logits of 1e4, issue 10). */

/* cnt[j] = number of labels among rows j, j + P, ... that are not ignore_index. With one partial (P = 1)
 * its work-item also folds it as clai_xent_inv would, scal[0] = 1 / count, and the host launches no
 * clai_xent_inv: a launch costs more than the work on CPUs (a training step's loss took five). */
__kernel void clai_xent_count(__global int *cnt, __global const int *labels, const long n, const long ls,
                              const long lo, const int ignore_index, const long P, __global float *scal) {
  const long j = get_global_id(0);
  if (j >= P) return;
  int c = 0;
  CLAI_PART_RANGE(j, n, P, r0, r1, st);
  for (long r = r0; r < r1; r += st) c += labels[lo + r * ls] != ignore_index;
  cnt[j] = c;
  if (P == 1) scal[0] = 1.0f / (float)c;
}

/* One work-group (of at most 256; active = 1): scal[0] = 1 / (sum of the P counts) (infinite when every
 * row is ignored). Counts are added as floats: exact below 2^24 rows. */
__kernel void clai_xent_inv(__global float *scal, __global const int *cnt, const long P, const int active) {
  __local float red[256];
  const int lid = (int)get_local_id(0), L = (int)get_local_size(0);
  if (get_group_id(0) != 0 || !active) return;
  long c = 0;
  for (long j = lid; j < P; j += L) c += cnt[j];
  red[lid] = (float)c;
  clai_tree_sum(red, lid, L);
  if (lid == 0) scal[0] = 1.0f / red[0];
}

#define CLAI_XENT(SFX, T, LD, ST)                                                                        \
  __kernel void clai_xent_rows_##SFX(__global float *rowloss, __global T *grad, __global const T *logits, \
                                     __global const int *labels, __global const float *scal,          \
                                     const long n, const long C, const long xs0, const long xs1,       \
                                     const long xo, const long ls, const long lo, const long gs0,      \
                                     const long gs1, const long go, const int ignore_index,            \
                                     const int has_grad) {                                             \
    const long r = get_global_id(0);                                                                   \
    if (r >= n) return;                                                                                \
    const int lab = labels[lo + r * ls];                                                               \
    __global const T *x = logits + xo + r * xs0;                                                       \
    if (lab == ignore_index || lab < 0 || lab >= C) {                                                  \
      const float v = lab == ignore_index ? 0.0f : NAN;                                                \
      rowloss[r] = v;                                                                                  \
      if (has_grad)                                                                                    \
        for (long c = 0; c < C; c++) ST(grad, go + r * gs0 + c * gs1, v);                              \
      return;                                                                                          \
    }                                                                                                  \
    float m = -INFINITY, s = 0.0f;                                                                     \
    for (long c = 0; c < C; c++) {                                                                     \
      const float v = LD(x, c * xs1);                                                                  \
      if (v > m) {                                                                                     \
        s = s * exp(m - v) + 1.0f;                                                                     \
        m = v;                                                                                         \
      } else if (v != -INFINITY) { /* NaN goes in here and makes s NaN */                              \
        s += exp(v - m);                                                                               \
      }                                                                                                \
    }                                                                                                  \
    if (m == INFINITY || m == -INFINITY) s = NAN; /* +inf: inf - inf as in PyTorch; all -inf: 0 / 0 */ \
    rowloss[r] = log(s) - (LD(x, (long)lab * xs1) - m);                                                \
    if (has_grad) {                                                                                    \
      const float inv = scal[0], is = 1.0f / s;                                                        \
      for (long c = 0; c < C; c++) {                                                                   \
        const float p = exp(LD(x, c * xs1) - m) * is;                                                  \
        ST(grad, go + r * gs0 + c * gs1, (p - (c == lab ? 1.0f : 0.0f)) * inv);                        \
      }                                                                                                \
    }                                                                                                  \
  }
CLAI_XENT(f32, float, CLAI_LD_F32, CLAI_ST_F32)
CLAI_XENT(f16, half, CLAI_LD_F16, CLAI_ST_F16)

/* Cross-entropy for long rows: one work-group per row. Each work-item keeps an online (max, sum) over the
 * columns lid, lid + L, ... ; the pairs are combined in a fixed tree over local memory (the work-group size
 * L is fixed per device at init, so the result is the same on every run). Local size at most 256. */
/* Two partial (max, sum) pairs; a pair with max -inf has sum 0, or NaN when it saw a NaN, which the sum
 * keeps (NaN * exp(-inf) would be NaN anyway, but two such pairs must not make 0 of it). */
inline void clai_lse_combine(float *m, float *s, const float m2, const float s2) {
  const float m1 = *m, mm = fmax(m1, m2);
  *s = mm == -INFINITY ? *s + s2 : *s * exp(m1 - mm) + s2 * exp(m2 - mm);
  *m = mm;
}

#define CLAI_XENT_WG(SFX, T, LD, ST)                                                                     \
  __kernel void clai_xent_rows_wg_##SFX(__global float *rowloss, __global T *grad,                     \
                                        __global const T *logits, __global const int *labels,          \
                                        __global const float *scal, const long n, const long C,        \
                                        const long xs0, const long xs1, const long xo, const long ls,   \
                                        const long lo, const long gs0, const long gs1, const long go,  \
                                        const int ignore_index, const int has_grad) {                  \
    __local float red_m[256], red_s[256];                                                              \
    const long r = get_group_id(0);                                                                    \
    const int lid = (int)get_local_id(0), L = (int)get_local_size(0);                                  \
    if (r >= n) return; /* the whole group leaves together */                                          \
    const int lab = labels[lo + r * ls];                                                               \
    __global const T *x = logits + xo + r * xs0;                                                       \
    if (lab == ignore_index || lab < 0 || lab >= C) {                                                  \
      const float v = lab == ignore_index ? 0.0f : NAN;                                                \
      if (lid == 0) rowloss[r] = v;                                                                    \
      if (has_grad)                                                                                    \
        for (long c = lid; c < C; c += L) ST(grad, go + r * gs0 + c * gs1, v);                         \
      return;                                                                                          \
    }                                                                                                  \
    float m = -INFINITY, s = 0.0f;                                                                     \
    for (long c = lid; c < C; c += L) {                                                                \
      const float v = LD(x, c * xs1);                                                                  \
      if (v > m) {                                                                                     \
        s = s * exp(m - v) + 1.0f;                                                                     \
        m = v;                                                                                         \
      } else if (v != -INFINITY) { /* NaN goes in here and makes s NaN */                              \
        s += exp(v - m);                                                                               \
      }                                                                                                \
    }                                                                                                  \
    red_m[lid] = m;                                                                                    \
    red_s[lid] = s;                                                                                    \
    for (int st = 1; st < L; st <<= 1) {                                                               \
      barrier(CLK_LOCAL_MEM_FENCE);                                                                    \
      if ((lid & (2 * st - 1)) == 0 && lid + st < L) {                                                 \
        float a = red_m[lid], b = red_s[lid];                                                          \
        clai_lse_combine(&a, &b, red_m[lid + st], red_s[lid + st]);                                    \
        red_m[lid] = a;                                                                                \
        red_s[lid] = b;                                                                                \
      }                                                                                                \
    }                                                                                                  \
    barrier(CLK_LOCAL_MEM_FENCE);                                                                      \
    const float mx = red_m[0];                                                                         \
    const float sum = mx == INFINITY || mx == -INFINITY ? NAN : red_s[0]; /* as the per-row kernel */  \
    if (lid == 0) rowloss[r] = log(sum) - (LD(x, (long)lab * xs1) - mx);                               \
    if (has_grad) {                                                                                    \
      const float inv = scal[0], is = 1.0f / sum;                                                      \
      for (long c = lid; c < C; c += L) {                                                              \
        const float p = exp(LD(x, c * xs1) - mx) * is;                                                 \
        ST(grad, go + r * gs0 + c * gs1, (p - (c == lab ? 1.0f : 0.0f)) * inv);                        \
      }                                                                                                \
    }                                                                                                  \
  }
CLAI_XENT_WG(f32, float, CLAI_LD_F32, CLAI_ST_F32)
CLAI_XENT_WG(f16, half, CLAI_LD_F16, CLAI_ST_F16)

/* part[j] = sum of the elements of partial j (see CLAI_PART_RANGE). With one partial (P = 1) the work-item
 * writes the result as clai_loss_finish would, out[oo] = (0 + the sum) * (use_scal ? scal[0] : scale),
 * and the host launches no clai_loss_finish. */
__kernel void clai_loss_partial(__global float *part, __global const float *x, const long n, const long P,
                                __global float *out, __global const float *scal, const long oo, const float scale,
                                const int use_scal) {
  const long j = get_global_id(0);
  if (j >= P) return;
  float s = 0.0f;
  CLAI_PART_RANGE(j, n, P, lo, hi, st);
  for (long i = lo; i < hi; i += st) s += x[i];
  part[j] = s;
  if (P == 1) out[oo] = (0.0f + s) * (use_scal ? scal[0] : scale);
}

/* One work-group (of at most 256; active = 1): out[oo] = (sum of the P partials, in a fixed order) *
 * (use_scal ? scal[0] : scale). */
__kernel void clai_loss_finish(__global float *out, __global const float *part, __global const float *scal,
                               const long P, const long oo, const float scale, const int use_scal,
                               const int active) {
  __local float red[256];
  const int lid = (int)get_local_id(0), L = (int)get_local_size(0);
  if (get_group_id(0) != 0 || !active) return;
  float s = 0.0f;
  for (long j = lid; j < P; j += L) s += part[j];
  red[lid] = s;
  clai_tree_sum(red, lid, L);
  if (lid == 0) out[oo] = red[0] * (use_scal ? scal[0] : scale);
}

/* part[j] = sum over the elements i of partial j of (x_i - y_i)^2; grad_i = gscale * (x_i - y_i) when
 * has_grad. The dense case (one merged dim of unit strides) skips the index arithmetic. */
#define CLAI_MSE(SFX, T, LD, ST)                                                                         \
  __kernel void clai_mse_##SFX(__global float *part, __global T *grad, __global const T *x,            \
                               __global const T *y, CLAI_INDEX_ARGS(ix), const long P,                 \
                               const float gscale, const int has_grad) {                               \
    const long j = get_global_id(0);                                                                   \
    if (j >= P) return;                                                                                \
    float s = 0.0f;                                                                                    \
    CLAI_PART_RANGE(j, CLAI_IX_NUMEL(ix), P, lo, hi, st);                                                       \
    const int dense = CLAI_IX_NDIM(ix) == 1 && CLAI_IX_STRIDE_IN(ix, 0) == 1 && CLAI_IX_STRIDE_IN(ix, 1) == 1 &&                  \
                      (!has_grad || CLAI_IX_STRIDE_IN(ix, 2) == 1);                                             \
    for (long i = lo; i < hi; i += st) {                                                               \
      long ox, oy, og;                                                                                 \
      if (dense) {                                                                                     \
        ox = CLAI_IX_OFF(ix, 0) + i;                                                                         \
        oy = CLAI_IX_OFF(ix, 1) + i;                                                                         \
        og = CLAI_IX_OFF(ix, 2) + i;                                                                         \
      } else {                                                                                         \
        CLAI_OFFSETS(ix, i, &ox, &oy, &og);                                                           \
      }                                                                                                \
      const float d = LD(x, ox) - LD(y, oy);                                                           \
      s += d * d;                                                                                      \
      if (has_grad) ST(grad, og, gscale * d);                                                          \
    }                                                                                                  \
    part[j] = s;                                                                                       \
  }
CLAI_MSE(f32, float, CLAI_LD_F32, CLAI_ST_F32)
CLAI_MSE(f16, half, CLAI_LD_F16, CLAI_ST_F16)
