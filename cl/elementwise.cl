/* elementwise.cl - binary ops with NumPy broadcasting, unary ops and the affine map alpha*x + beta.
 *
 * Layout: any strided views. The host merges dims that are contiguous in every operand (so same-shape
 * dense tensors arrive as ndim 1) and gives broadcast dims stride 0. Work mapping: one work-item per
 * output element, dim 0 linear. The op is a uniform argument; f16 is loaded and stored with
 * vload_half/vstore_half and computed in float. The *_contig_f32 kernels serve the dense f32 case with
 * unit strides known at compile time, which lets the compiler vectorise across work-items.
 * op codes follow enum clai_binary_op / clai_unary_op; CLAI_OP_AFFINE (100) is alpha * x + beta. */

#define CLAI_OP_AFFINE 100

inline float clai_binary_f(const int op, const float a, const float b) {
  switch (op) {
  case 0: return a + b;
  case 1: return a - b;
  case 2: return a * b;
  case 3: return a / b;
  case 4: return fmax(a, b);
  default: return fmin(a, b);
  }
}

inline int clai_binary_i(const int op, const int a, const int b) {
  switch (op) {
  case 0: return (int)((uint)a + (uint)b); /* wraps like two's complement instead of undefined overflow */
  case 1: return (int)((uint)a - (uint)b);
  case 2: return (int)((uint)a * (uint)b);
  case 3: return b == 0 ? 0 : (a == INT_MIN && b == -1) ? INT_MIN : a / b;
  case 4: return max(a, b);
  default: return min(a, b);
  }
}

inline float clai_unary_f(const int op, const float x, const float alpha, const float beta) {
  switch (op) {
  case 0: return -x;
  case 1: return fabs(x);
  case 2: return exp(x);
  case 3: return log(x);
  case 4: return sqrt(x);
  case 5: return fmax(x, 0.0f);
  /* GELU (tanh form) as x * sigmoid(2u), the same function since 0.5(1 + tanh(u)) = 1 / (1 + exp(-2u)):
   * 1 + tanh(u) cancels for negative x and left an error of about |x| * 2^-24 in the tail (GELU(-100)
   * came out as -3e-6 instead of -0). */
  case 6: return x / (1.0f + exp(-1.5957691216057308f * (x + 0.044715f * x * x * x)));
  case 7: return x / (1.0f + exp(-x));
  case 8: return 1.0f / (1.0f + exp(-x));
  case 9: return tanh(x);
  default: return alpha * x + beta;
  }
}

inline int clai_unary_i(const int op, const int x, const float alpha, const float beta) {
  switch (op) {
  case 0: return (int)(0u - (uint)x);
  case 1: return x == INT_MIN ? INT_MIN : abs(x);
  default: return max(x, 0);
  }
}

#define CLAI_BINARY(SFX, T, LD, ST, FN)                                                                  \
  __kernel void clai_binary_##SFX(__global T *out, __global const T *a, __global const T *b,           \
                                  const clai_index ix, const int op) {                                 \
    const long i = get_global_id(0);                                                                   \
    if (i >= ix.numel) return;                                                                         \
    long oo, oa, ob;                                                                                   \
    clai_offsets(&ix, i, &oo, &oa, &ob);                                                               \
    ST(out, oo, FN(op, LD(a, oa), LD(b, ob)));                                                         \
  }
CLAI_BINARY(f32, float, CLAI_LD_F32, CLAI_ST_F32, clai_binary_f)
CLAI_BINARY(f16, half, CLAI_LD_F16, CLAI_ST_F16, clai_binary_f)
CLAI_BINARY(i32, int, CLAI_LD_I32, CLAI_ST_I32, clai_binary_i)

#define CLAI_UNARY(SFX, T, LD, ST, FN)                                                                   \
  __kernel void clai_unary_##SFX(__global T *out, __global const T *x, const clai_index ix, const int op, \
                                 const float alpha, const float beta) {                                \
    const long i = get_global_id(0);                                                                   \
    if (i >= ix.numel) return;                                                                         \
    long oo, ox, unused;                                                                               \
    clai_offsets(&ix, i, &oo, &ox, &unused);                                                           \
    ST(out, oo, FN(op, LD(x, ox), alpha, beta));                                                       \
  }
CLAI_UNARY(f32, float, CLAI_LD_F32, CLAI_ST_F32, clai_unary_f)
CLAI_UNARY(f16, half, CLAI_LD_F16, CLAI_ST_F16, clai_unary_f)
CLAI_UNARY(i32, int, CLAI_LD_I32, CLAI_ST_I32, clai_unary_i)

/* Dense f32 with unit strides: n elements starting at the given element offsets. */
__kernel void clai_binary_contig_f32(__global float *out, __global const float *a, __global const float *b,
                                     const long n, const long oo, const long oa, const long ob, const int op) {
  const long i = get_global_id(0);
  if (i >= n) return;
  out[oo + i] = clai_binary_f(op, a[oa + i], b[ob + i]);
}

__kernel void clai_unary_contig_f32(__global float *out, __global const float *x, const long n, const long oo,
                                    const long ox, const long unused, const int op, const float alpha,
                                    const float beta) {
  const long i = get_global_id(0);
  if (i >= n) return;
  out[oo + i] = clai_unary_f(op, x[ox + i], alpha, beta);
}
