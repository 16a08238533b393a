/* elementwise.cl - binary ops with NumPy broadcasting, unary ops and the affine map alpha*x + beta.
 *
 * Layout: any strided views. The host merges dims that are contiguous in every operand (so same-shape
 * dense tensors arrive as ndim 1) and gives broadcast dims stride 0. Work mapping: one work-item per
 * output element, dim 0 linear. The op is a uniform argument; f16 is loaded and stored with
 * vload_half/vstore_half and computed in float. The *_rows_f32 kernels serve dense f32 outputs whose inputs
 * have unit or zero column strides with contiguous runs per work-item (vector loads, the op hoisted out of
 * the loop).
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

/* clai_unary_f, the float ops of clai_unary, is in cl/common.cl (cl/quant.cl applies a GLU with it too). */

inline int clai_unary_i(const int op, const int x, const float alpha, const float beta) {
  switch (op) {
  case 0: return (int)(0u - (uint)x);
  case 1: return x == INT_MIN ? INT_MIN : abs(x);
  default: return max(x, 0);
  }
}

#define CLAI_BINARY(SFX, T, LD, ST, FN)                                                                  \
  __kernel void clai_binary_##SFX(__global T *out, __global const T *a, __global const T *b,           \
                                  CLAI_INDEX_ARGS(ix), const int op) {                                 \
    const long i = get_global_id(0);                                                                   \
    if (i >= CLAI_IX_NUMEL(ix)) return;                                                                         \
    long oo, oa, ob;                                                                                   \
    CLAI_OFFSETS(ix, i, &oo, &oa, &ob);                                                               \
    ST(out, oo, FN(op, LD(a, oa), LD(b, ob)));                                                         \
  }
CLAI_BINARY(f32, float, CLAI_LD_F32, CLAI_ST_F32, clai_binary_f)
CLAI_BINARY(f16, half, CLAI_LD_F16, CLAI_ST_F16, clai_binary_f)
CLAI_BINARY(i32, int, CLAI_LD_I32, CLAI_ST_I32, clai_binary_i)

#define CLAI_UNARY(SFX, T, LD, ST, FN)                                                                   \
  __kernel void clai_unary_##SFX(__global T *out, __global const T *x, CLAI_INDEX_ARGS(ix), const int op, \
                                 const float alpha, const float beta) {                                \
    const long i = get_global_id(0);                                                                   \
    if (i >= CLAI_IX_NUMEL(ix)) return;                                                                         \
    long oo, ox, unused;                                                                               \
    CLAI_OFFSETS(ix, i, &oo, &ox, &unused);                                                           \
    ST(out, oo, FN(op, LD(x, ox), alpha, beta));                                                       \
  }
CLAI_UNARY(f32, float, CLAI_LD_F32, CLAI_ST_F32, clai_unary_f)
CLAI_UNARY(f16, half, CLAI_LD_F16, CLAI_ST_F16, clai_unary_f)
CLAI_UNARY(i32, int, CLAI_LD_I32, CLAI_ST_I32, clai_unary_i)

/* clai_glu: out = OP(a) * b, where the index's operand 1 walks x's first half (a) and operand 2 its second
 * half (b), both in the one buffer x. */
#define CLAI_GLU(SFX, T, LD, ST)                                                                          \
  __kernel void clai_glu_##SFX(__global T *out, __global const T *x, CLAI_INDEX_ARGS(ix), const int op) { \
    const long i = get_global_id(0);                                                                   \
    if (i >= CLAI_IX_NUMEL(ix)) return;                                                                \
    long oo, oa, ob;                                                                                   \
    CLAI_OFFSETS(ix, i, &oo, &oa, &ob);                                                               \
    ST(out, oo, clai_unary_f(op, LD(x, oa), 1.0f, 0.0f) * LD(x, ob));                                  \
  }
CLAI_GLU(f32, float, CLAI_LD_F32, CLAI_ST_F32)
CLAI_GLU(f16, half, CLAI_LD_F16, CLAI_ST_F16)

/* clai_glu on f32 rows whose last dim is dense in x and out: work-item g takes row g / nch and the columns
 * [(g % nch) * chunk, + chunk), eight at a time, so that OP's exp runs on float8 (the indexed kernel above
 * computed one element per work-item, at a tenth of the speed). Row r of out starts at oo + r * ors, its a
 * half at xo + r * xrs and its b half n further. */
__kernel void clai_glu_rows_f32(__global float *out, __global const float *x, const long rows, const long n,
                                const long chunk, const long oo, const long ors, const long xo, const long xrs,
                                const int op) {
  if (rows <= 0 || n <= 0 || chunk <= 0) return; /* the warm-up launch passes zeros (lib/program.c) */
  const long nch = (n + chunk - 1) / chunk, g = get_global_id(0);
  if (g >= rows * nch) return;
  const long r = g / nch, j0 = (g % nch) * chunk, j1 = min(n, j0 + chunk);
  __global float *o = out + oo + r * ors;
  __global const float *a = x + xo + r * xrs, *b = a + n;
  long j = j0;
  for (; j + 8 <= j1; j += 8) {
    const float8 v = vload8(0, a + j), w = vload8(0, b + j);
    float8 y;
    switch (op) {
    case 5: y = v < 0.0f ? 0.0f : v; break; /* relu; NaN passes through */
    case 6: y = v / (1.0f + exp(-1.5957691216057308f * (v + 0.044715f * v * v * v))); break;
    case 7: y = v / (1.0f + exp(-v)); break;
    case 8: y = 1.0f / (1.0f + exp(-v)); break;
    case 9: y = tanh(v); break;
    default:
      for (int k = 0; k < 8; k++) o[j + k] = clai_unary_f(op, a[j + k], 1.0f, 0.0f) * b[j + k];
      continue;
    }
    vstore8(y * w, 0, o + j);
  }
  for (; j < j1; j++) o[j] = clai_unary_f(op, a[j], 1.0f, 0.0f) * b[j];
}

/* Dense f32 output [rows, cols] (row stride cols) from inputs read at in[o + r * rs + c * cs], where the
 * column stride cs is 1 or 0 (broadcast along the row): a same-shape dense add is one long row, [R, C] + [C]
 * has b's row stride 0, [R, C] + [R, 1] has b's column stride 0. Work-item g takes row g / nch and the
 * columns [(g % nch) * chunk, + chunk), a contiguous run served by vload8/vstore8 with the op and the
 * broadcast pattern hoisted out of the loop: the CPU-shaped mapping (few, long work-items) that POCL runs
 * at memory speed. */
#define CLAI_ROWS_LOOP(LA, LB, EXPR)                                                                    \
  for (; j + 8 <= m; j += 8) {                                                                         \
    const float8 x = LA, y = LB;                                                                       \
    vstore8(EXPR, 0, o + j);                                                                           \
  }
#define CLAI_ROWS_OP(EXPR)                                                                              \
  if (acs && bcs) {                                                                                    \
    CLAI_ROWS_LOOP(vload8(0, pa + j), vload8(0, pb + j), EXPR)                                         \
  } else if (acs) {                                                                                    \
    const float8 vb = (float8)(pb[0]);                                                                 \
    CLAI_ROWS_LOOP(vload8(0, pa + j), vb, EXPR)                                                        \
  } else if (bcs) {                                                                                    \
    const float8 va = (float8)(pa[0]);                                                                 \
    CLAI_ROWS_LOOP(va, vload8(0, pb + j), EXPR)                                                        \
  } else {                                                                                             \
    const float8 va = (float8)(pa[0]), vb = (float8)(pb[0]);                                          \
    CLAI_ROWS_LOOP(va, vb, EXPR)                                                                       \
  }                                                                                                    \
  break;

__kernel void clai_binary_rows_f32(__global float *out, __global const float *a, __global const float *b,
                                   const long rows, const long cols, const long chunk, const long oo,
                                   const long oa, const long ob, const long ars, const long brs, const int acs,
                                   const int bcs, const int op) {
  if (chunk <= 0) return;
  const long g = get_global_id(0), nch = (cols + chunk - 1) / chunk;
  if (g >= rows * nch) return;
  const long r = g / nch, c0 = (g - r * nch) * chunk, m = min(chunk, cols - c0);
  __global float *o = out + oo + r * cols + c0;
  __global const float *pa = a + oa + r * ars + c0 * acs;
  __global const float *pb = b + ob + r * brs + c0 * bcs;
  long j = 0;
  switch (op) {
  case 0: CLAI_ROWS_OP(x + y)
  case 1: CLAI_ROWS_OP(x - y)
  case 2: CLAI_ROWS_OP(x * y)
  case 3: CLAI_ROWS_OP(x / y)
  case 4: CLAI_ROWS_OP(fmax(x, y))
  default: CLAI_ROWS_OP(fmin(x, y))
  }
  for (; j < m; j++) o[j] = clai_binary_f(op, pa[j * acs], pb[j * bcs]);
}

/* Dense f32 unary op (and the affine map) over n elements: work-item g takes the contiguous run
 * [g * chunk, + chunk) with vload8/vstore8 and the op hoisted out of the loop, like clai_binary_rows_f32. */
#define CLAI_UROWS(EXPR)                                                                                \
  for (; j + 8 <= m; j += 8) {                                                                         \
    const float8 x = vload8(0, px + j);                                                                \
    vstore8(EXPR, 0, o + j);                                                                           \
  }                                                                                                    \
  break;

__kernel void clai_unary_rows_f32(__global float *out, __global const float *xin, const long n, const long chunk,
                                  const long oo, const long ox, const int op, const float alpha,
                                  const float beta) {
  if (chunk <= 0) return;
  const long c0 = get_global_id(0) * chunk;
  if (c0 >= n) return;
  const long m = min(chunk, n - c0);
  __global float *o = out + oo + c0;
  __global const float *px = xin + ox + c0;
  long j = 0;
  switch (op) {
  case 0: CLAI_UROWS(-x)
  case 1: CLAI_UROWS(fabs(x))
  case 2: CLAI_UROWS(exp(x))
  case 3: CLAI_UROWS(log(x))
  case 4: CLAI_UROWS(sqrt(x))
  case 5: CLAI_UROWS(x < 0.0f ? 0.0f : x) /* NaN passes, as in clai_unary_f */
  case 6: CLAI_UROWS(x / (1.0f + exp(-1.5957691216057308f * (x + 0.044715f * x * x * x))))
  case 7: CLAI_UROWS(x / (1.0f + exp(-x)))
  case 8: CLAI_UROWS(1.0f / (1.0f + exp(-x)))
  case 9: CLAI_UROWS(tanh(x))
  default: CLAI_UROWS(alpha * x + beta)
  }
  for (; j < m; j++) o[j] = clai_unary_f(op, px[j], alpha, beta);
}
