/* optim.cl - optimizer steps (SGD, Adam/AdamW) and gradient clipping by global norm.
 *
 * Layout: every tensor is dense (contiguous) from an element offset; the optimizer state (momentum buffer,
 * exp_avg, exp_avg_sq) is f32, parameters and gradients are f32 or f16 (loaded into f32, updated in f32
 * and stored back). Work mapping: one work-item per element (Adam: a chunk of CLAI_ADAM_PER on CPUs), one
 * launch per parameter tensor.
 *
 * The global norm is reduced without atomics in a fixed order: clai_sumsq_* gives work-item j of a tensor
 * one fixed share of its elements (CLAI_PART_RANGE; P depends only on the tensor's size), each
 * work-item writes one partial sum of squares, and clai_norm_finish adds all partials of all tensors in
 * a fixed order in one work-group (clai_norm_finish). The scale kernel then reads the clip factor from
 * device memory, so no host round trip is needed. */

/* The optimizer state is kept out of the subnormal range: a value that falls below FLT_MIN in magnitude is
 * stored as a zero of its sign. Where a gradient stays 0 (Fashion-MNIST's border pixels, for the first
 * layer's weights), Adam's exp_avg and SGD's momentum decay geometrically, by beta1 or momentum each
 * step, and after ~800 steps every operation on them took a microcode assist on x86: the MLP's Adam step
 * went from 139 to 1044 us, and its epochs from 0.89 to 1.31 s, by the third epoch (POCL 3.1, AVX-512).
 * Such a value moves its parameter by at most about lr * 1e-38 / eps, below any f32 weight's last bit
 * (Adam's exp_avg_sq is flushed only where the step is 0 either way: see clai_adam). Done here rather than
 * by -cl-denorms-are-zero, which would flush the data of every kernel on implementations that honour it and
 * not on the others: this is the same on every device. NaN passes through. */
inline float clai_state_flush(const float x) { return fabs(x) < FLT_MIN ? copysign(0.0f, x) : x; }

/* PyTorch's SGD: g = grad + wd * p; buf = first ? g : momentum * buf + (1 - dampening) * g;
 * g = nesterov ? g + momentum * buf : buf; p -= lr * g. With momentum 0 the buffer is not touched. */
#define CLAI_SGD(SFX, T, LD, ST)                                                                         \
  __kernel void clai_sgd_##SFX(__global T *param, __global const T *grad, __global float *buf,         \
                               const long n, const long po, const long go, const long bo, const float lr,  \
                               const float momentum, const float dampening, const float wd,            \
                               const int nesterov, const int first) {                                  \
    const long i = get_global_id(0);                                                                   \
    if (i >= n) return;                                                                                \
    const float p = LD(param, po + i);                                                                 \
    float g = LD(grad, go + i);                                                                        \
    if (wd != 0.0f) g += wd * p;                                                                       \
    if (momentum != 0.0f) {                                                                            \
      const float b = clai_state_flush(first ? g : momentum * buf[bo + i] + (1.0f - dampening) * g);   \
      buf[bo + i] = b;                                                                                 \
      g = nesterov ? g + momentum * b : b;                                                             \
    }                                                                                                  \
    ST(param, po + i, p - lr * g);                                                                     \
  }
CLAI_SGD(f32, float, CLAI_LD_F32, CLAI_ST_F32)
CLAI_SGD(f16, half, CLAI_LD_F16, CLAI_ST_F16)

/* PyTorch's Adam (decoupled 0) and AdamW (decoupled 1), bias corrections precomputed by the host:
 * step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t).
 * Adam: g += wd * p. AdamW: p *= 1 - lr * wd. Then m = m + (1 - beta1)(g - m), v = beta2 v + (1 - beta2) g^2,
 * p -= step_size * m / (sqrt(v) / bc2_sqrt + eps). */
/* On CPUs each work-item updates CLAI_ADAM_PER consecutive elements (lib/op-optim.c launches n / PER of
 * them): one element per work-item costs POCL more in work-item bookkeeping than the update itself. The
 * arithmetic per element is the same either way, so results do not depend on the mapping. */
#if CLAI_CPU
#define CLAI_ADAM_PER 128
#else
#define CLAI_ADAM_PER 1
#endif
#define CLAI_ADAM(SFX, T, LD, ST)                                                                        \
  __kernel void clai_adam_##SFX(__global T *param, __global const T *grad, __global float *m,          \
                                __global float *v, const long n, const long po, const long go,         \
                                const long mo, const long vo, const float lr, const float beta1,       \
                                const float beta2, const float eps, const float wd,                    \
                                const float step_size, const float bc2_sqrt, const int decoupled) {    \
    const long i0 = get_global_id(0) * CLAI_ADAM_PER;                                                  \
    const long i1 = min(n, i0 + CLAI_ADAM_PER);                                                        \
    for (long i = i0; i < i1; i++) {                                                                   \
      float p = LD(param, po + i);                                                                     \
      float g = LD(grad, go + i);                                                                      \
      if (wd != 0.0f) {                                                                                \
        if (decoupled)                                                                                 \
          p *= 1.0f - lr * wd;                                                                         \
        else                                                                                           \
          g += wd * p;                                                                                 \
      }                                                                                                \
      float mi = m[mo + i];                                                                            \
      mi = clai_state_flush(mi + (1.0f - beta1) * (g - mi));                                           \
      /* exp_avg_sq only once exp_avg is 0 and eps > 0, where the step is 0 either way: beside a normal   \
       * exp_avg, or with eps 0, a flushed one would change the step (up to inf) */                     \
      const float vs = beta2 * v[vo + i] + (1.0f - beta2) * g * g;                                     \
      const float vi = mi == 0.0f && eps > 0.0f ? clai_state_flush(vs) : vs;                           \
      m[mo + i] = mi;                                                                                  \
      v[vo + i] = vi;                                                                                  \
      ST(param, po + i, p - step_size * mi / (sqrt(vi) / bc2_sqrt + eps));                             \
    }                                                                                                  \
  }
CLAI_ADAM(f32, float, CLAI_LD_F32, CLAI_ST_F32)
CLAI_ADAM(f16, half, CLAI_LD_F16, CLAI_ST_F16)

/* partial[po + j] = sum of the squares of the elements of partial j (see CLAI_PART_RANGE). */
#define CLAI_SUMSQ(SFX, T, LD)                                                                           \
  __kernel void clai_sumsq_##SFX(__global float *partial, __global const T *x, const long n,           \
                                 const long xo, const long po, const long P) {                         \
    const long j = get_global_id(0);                                                                   \
    if (j >= P) return;                                                                                \
    float s = 0.0f;                                                                                    \
    CLAI_PART_RANGE(j, n, P, lo, hi, st);                                                              \
    for (long i = lo; i < hi; i += st) {                                                               \
      const float a = LD(x, xo + i);                                                                   \
      s += a * a;                                                                                      \
    }                                                                                                  \
    partial[po + j] = s;                                                                               \
  }
CLAI_SUMSQ(f32, float, CLAI_LD_F32)
CLAI_SUMSQ(f16, half, CLAI_LD_F16)

/* One work-group (of at most 256; active = 1): work-item lid adds partials lid, lid + L, ... in order, the
 * group adds those in a fixed tree; norm = sqrt(total); scal[0] = norm, scal[1] = min(1, max_norm /
 * (norm + 1e-6)); the norm also goes to out[oo] when has_out. */
__kernel void clai_norm_finish(__global float *scal, __global const float *partial, __global float *out,
                               const long count, const long oo, const float max_norm, const int has_out,
                               const int active) {
  __local float red[256];
  const int lid = (int)get_local_id(0), L = (int)get_local_size(0);
  if (get_group_id(0) != 0 || !active) return; /* whole groups leave together */
  float s = 0.0f;
  for (long i = lid; i < count; i += L) s += partial[i];
  red[lid] = s;
  clai_tree_sum(red, lid, L);
  if (lid != 0) return;
  const float norm = sqrt(red[0]);
  scal[0] = norm;
  const float c = max_norm / (norm + 1e-6f);
  scal[1] = c > 1.0f ? 1.0f : c; /* a NaN norm gives a NaN factor, as in PyTorch */
  if (has_out) out[oo] = norm;
}

/* x[xo + i] *= scal[1]. */
#define CLAI_CLIP_SCALE(SFX, T, LD, ST)                                                                  \
  __kernel void clai_clip_scale_##SFX(__global T *x, __global const float *scal, const long n,         \
                                      const long xo) {                                                 \
    const long i = get_global_id(0);                                                                   \
    if (i >= n) return;                                                                                \
    ST(x, xo + i, LD(x, xo + i) * scal[1]);                                                            \
  }
CLAI_CLIP_SCALE(f32, float, CLAI_LD_F32, CLAI_ST_F32)
CLAI_CLIP_SCALE(f16, half, CLAI_LD_F16, CLAI_ST_F16)
