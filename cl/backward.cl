/* backward.cl - gradients of the elementwise activations of cl/elementwise.cl.
 *
 * grad_x = grad_out * f'(x), where x is the forward *input*. Operands through clai_index (0 = grad_x,
 * 1 = grad_out, 2 = x), any strided views; f16 is storage only. One work-item per element (a chunk of
 * CLAI_BWD_PER on CPUs).
 * op codes follow enum clai_unary_op. Conventions at kinks follow PyTorch: relu'(0) = 0, abs'(0) = 0.
 * ReLU's backward is PyTorch's threshold_backward, a selection rather than a product: grad_x = x <= 0 ? 0 :
 * grad_out, so the gradient passes at x = NaN (NaN <= 0 is false) and is 0 where x <= 0 even when grad_out
 * is NaN or infinite (0 * inf would be NaN). */

inline float clai_dunary(const int op, const float x) {
  switch (op) {
  case 0: return -1.0f;                              /* neg */
  case 1: return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : 0.0f; /* abs: sign(x) */
  case 2: return exp(x);                             /* exp */
  case 3: return 1.0f / x;                           /* log */
  case 4: return 0.5f / sqrt(x);                     /* sqrt */
  case 5: return x <= 0.0f ? 0.0f : 1.0f;            /* relu (the kernel selects instead, see above) */
  case 6: {                                          /* gelu, tanh form: x * s(2u), u = k(x + 0.044715x^3) */
    const float x2 = x * x;
    const float s = 1.0f / (1.0f + exp(-1.5957691216057308f * (x + 0.044715f * x2 * x)));
    return s + x * s * (1.0f - s) * 1.5957691216057308f * (1.0f + 0.134145f * x2);
  }
  case 7: {                                          /* silu: s + x s (1 - s) */
    const float s = 1.0f / (1.0f + exp(-x));
    return s * (1.0f + x * (1.0f - s));
  }
  case 8: {                                          /* sigmoid: s (1 - s) */
    const float s = 1.0f / (1.0f + exp(-x));
    return s * (1.0f - s);
  }
  default: {                                         /* tanh: 1 - tanh^2 */
    const float t = tanh(x);
    return 1.0f - t * t;
  }
  }
}

/* On CPUs each work-item takes CLAI_BWD_PER consecutive elements (lib/op-backward.c launches numel / PER of
 * them), so the switch on op is decided once per chunk and POCL's per-work-item overhead is amortised. */
#if CLAI_CPU
#define CLAI_BWD_PER 32
#else
#define CLAI_BWD_PER 1
#endif
#define CLAI_UNARY_BWD(SFX, T, LD, ST)                                                                   \
  __kernel void clai_unary_bwd_##SFX(__global T *gx, __global const T *gy, __global const T *x,        \
                                     CLAI_INDEX_ARGS(ix), const int op) {                              \
    const long i0 = get_global_id(0) * CLAI_BWD_PER;                                                   \
    const long i1 = min((long)CLAI_IX_NUMEL(ix), i0 + CLAI_BWD_PER);                                            \
    if (op == 5 && CLAI_IX_NDIM(ix) == 1) { /* relu on merged (e.g. dense) operands: the training fast path */  \
      const long s0 = CLAI_IX_STRIDE_IN(ix, 0), s1 = CLAI_IX_STRIDE_IN(ix, 1), s2 = CLAI_IX_STRIDE_IN(ix, 2);                     \
      for (long i = i0; i < i1; i++)                                                                   \
        ST(gx, CLAI_IX_OFF(ix, 0) + i * s0, LD(x, CLAI_IX_OFF(ix, 2) + i * s2) <= 0.0f ? 0.0f : LD(gy, CLAI_IX_OFF(ix, 1) + i * s1)); \
      return;                                                                                          \
    }                                                                                                  \
    for (long i = i0; i < i1; i++) {                                                                   \
      long o0, o1, o2;                                                                                 \
      CLAI_OFFSETS(ix, i, &o0, &o1, &o2);                                                             \
      const float xv = LD(x, o2);                                                                      \
      ST(gx, o0, op == 5 ? (xv <= 0.0f ? 0.0f : LD(gy, o1)) : LD(gy, o1) * clai_dunary(op, xv));       \
    }                                                                                                  \
  }
CLAI_UNARY_BWD(f32, float, CLAI_LD_F32, CLAI_ST_F32)
CLAI_UNARY_BWD(f16, half, CLAI_LD_F16, CLAI_ST_F16)

/* The backward of clai_binary for one side: dst[i] (dense f32 over grad_out's shape, row-major) =
 * grad_out * d(a OP b)/d(side), side 0 = a, 1 = b, with a and b broadcast through the index (operands
 * grad_out, a, b). The host sums dst down to the side's shape (clai_sum_to). maximum/minimum: the side
 * fmax/fmin picked gets the gradient, a tie splits it in halves, a NaN side gets none (fmax ignores NaN),
 * two NaNs split it. div: d/db = -(g / b) * (a / b), which does not overflow where b*b would. */
inline float clai_dbinary(const int op, const int side, const float g, const float a, const float b) {
  switch (op) {
  case 0: return g;
  case 1: return side ? -g : g;
  case 2: return g * (side ? a : b);
  case 3: return side ? -(g / b) * (a / b) : g / b;
  default: {
    const float self = side ? b : a, other = side ? a : b;
    const int sn = isnan(self), on = isnan(other);
    const int wins = op == 4 ? self > other : self < other;
    const float w = sn && on ? 0.5f : sn ? 0.0f : on ? 1.0f : wins ? 1.0f : self == other ? 0.5f : 0.0f;
    return g * w;
  }
  }
}
#define CLAI_BINARY_BWD(SFX, T, LD)                                                                      \
  __kernel void clai_binary_bwd_##SFX(__global float *dst, __global const T *gy, __global const T *a,  \
                                      __global const T *b, CLAI_INDEX_ARGS(ix), const int op,         \
                                      const int side) {                                                \
    const long i0 = get_global_id(0) * CLAI_BWD_PER;                                                   \
    const long i1 = min((long)CLAI_IX_NUMEL(ix), i0 + CLAI_BWD_PER);                                            \
    for (long i = i0; i < i1; i++) {                                                                   \
      long og, oa, ob;                                                                                 \
      CLAI_OFFSETS(ix, i, &og, &oa, &ob);                                                             \
      dst[i] = clai_dbinary(op, side, LD(gy, og), LD(a, oa), LD(b, ob));                               \
    }                                                                                                  \
  }
CLAI_BINARY_BWD(f32, float, CLAI_LD_F32)
CLAI_BINARY_BWD(f16, half, CLAI_LD_F16)
