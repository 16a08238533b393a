/* layout.cl - gather rows (embedding lookup), one-hot and where/select.
 *
 * Layout: any strided views. The host builds a clai_index over the output's shape; an input that has fewer
 * dims than the output (the index of a gather, the labels of a one-hot) is given as a view with a trailing
 * size-1 dim, so it reaches the kernel with stride 0 there. The linear output index i is row-major over the
 * output's shape whatever dims the host merged, so the position along the last dim is i % (last dim).
 * Work mapping: one work-item per output element, dim 0 linear (gather: a chunk of CLAI_GATHER_PER on CPUs).
 *
 * gather and where move elements without arithmetic, so they are written per element size (b4: f32 and i32,
 * b2: f16) and copy bits. A gather index outside [0, rows) reads nothing: its output row is zeros and the
 * lowest such position is recorded with atomic_min in `flag` (an int the host set to INT_MAX and reads back).
 * Integer atomics leave the result independent of scheduling. */

/* On CPUs each work-item copies CLAI_GATHER_PER consecutive output elements (lib/op-layout.c launches
 * numel / PER of them), which amortises POCL's per-work-item cost over a chunk. */
#if CLAI_CPU
#define CLAI_GATHER_PER 64
#else
#define CLAI_GATHER_PER 1
#endif
/* The work-item's elements go in runs: a run stays in one row of the table and in the output's innermost
 * dim (which holds the column dim, where the index's stride is 0), so its index entry, its table row and
 * its strides are found once and the run is a plain copy (a contiguous one, which LLVM vectorizes, when
 * both sides have unit strides). Per element, the index arithmetic cost ~6x the copy: a shuffle of the
 * Fashion-MNIST training set took 0.3 s. */
#define CLAI_GATHER(SFX, T)                                                                                \
  __kernel void clai_gather_rows_##SFX(__global T *out, __global const T *table, __global const int *index,  \
                                       __global int *flag, CLAI_INDEX_ARGS(ix), const long ncols,            \
                                       const long nrows, const long toff, const long trow, const long tcol) { \
    const long i0 = get_global_id(0) * CLAI_GATHER_PER;                                                      \
    const long i1 = min((long)CLAI_IX_NUMEL(ix), i0 + CLAI_GATHER_PER);                                      \
    const long inner = CLAI_IX_SHAPE_IN(ix), so = CLAI_IX_STRIDE_IN(ix, 0);                                  \
    for (long i = i0; i < i1;) {                                                                             \
      long oo, oi, unused;                                                                                   \
      CLAI_OFFSETS(ix, i, &oo, &oi, &unused);                                                               \
      const long col = i % ncols;                                                                            \
      const long run = min(min(i1 - i, ncols - col), inner - i % inner);                                     \
      const long row = index[oi];                                                                            \
      /* 0 <= row < nrows as one unsigned comparison: llvmpipe (rusticl 22.3) takes a sign-extended negative \
       * long for >= 0 (a bad index -1 read the row before the table) */                                     \
      if ((ulong)row < (ulong)nrows) {                                                                       \
        __global const T *src = table + toff + row * trow + col * tcol;                                      \
        if (so == 1 && tcol == 1)                                                                            \
          for (long e = 0; e < run; e++) out[oo + e] = src[e];                                               \
        else                                                                                                 \
          for (long e = 0; e < run; e++) out[oo + e * so] = src[e * tcol];                                   \
      } else {                                                                                               \
        if (col == 0) atomic_min(flag, (int)min(i / ncols, (long)INT_MAX - 1));                              \
        for (long e = 0; e < run; e++) out[oo + e * so] = 0;                                                 \
      }                                                                                                      \
      i += run;                                                                                              \
    }                                                                                                        \
  }
CLAI_GATHER(b4, uint)
CLAI_GATHER(b2, ushort)

/* out[..., c] = (labels[...] == c); dtype codes as in enum clai_dtype (0 f32, 1 f16, 2 i32). */
__kernel void clai_one_hot(__global uchar *out, __global const int *labels, CLAI_INDEX_ARGS(ix), const long ncls,
                           const int out_dtype) {
  const long i = get_global_id(0);
  if (i >= CLAI_IX_NUMEL(ix)) return;
  long oo, ol, unused;
  CLAI_OFFSETS(ix, i, &oo, &ol, &unused);
  const int hit = (long)labels[ol] == i % ncls;
  if (out_dtype == 0)
    ((__global float *)out)[oo] = hit ? 1.0f : 0.0f;
  else if (out_dtype == 1)
    vstore_half(hit ? 1.0f : 0.0f, oo, (__global half *)out);
  else
    ((__global int *)out)[oo] = hit;
}

/* out = mask != 0 ? a : b. ixa holds (out, mask, a), ixb (out, b); both over out's shape, so the same linear
 * index i names the same element in both. mask dtype codes as in enum clai_dtype; a NaN mask counts as
 * nonzero, -0.0 as zero. */
#define CLAI_WHERE(SFX, T)                                                                                 \
  __kernel void clai_where_##SFX(__global T *out, __global const uchar *mask, __global const T *a,          \
                                 __global const T *b, CLAI_INDEX_ARGS(ixa), CLAI_INDEX_ARGS(ixb),          \
                                 const int mask_dtype) {                                                   \
    const long i = get_global_id(0);                                                                       \
    if (i >= CLAI_IX_NUMEL(ixa)) return;                                                                            \
    long oo, om, oa, ob, u1, u2;                                                                           \
    CLAI_OFFSETS(ixa, i, &oo, &om, &oa);                                                                  \
    CLAI_OFFSETS(ixb, i, &u1, &ob, &u2);                                                                  \
    int m;                                                                                                 \
    if (mask_dtype == 0)                                                                                   \
      m = ((__global const float *)mask)[om] != 0.0f;                                                      \
    else if (mask_dtype == 1)                                                                              \
      m = vload_half(om, (__global const half *)mask) != 0.0f;                                             \
    else                                                                                                   \
      m = ((__global const int *)mask)[om] != 0;                                                           \
    out[oo] = m ? a[oa] : b[ob];                                                                           \
  }
CLAI_WHERE(b4, uint)
CLAI_WHERE(b2, ushort)

/* The backward of gather rows: table[row, c] (+)= the sum of grad_out[p, c] over the positions p whose index
 * is row. The host sorts the positions by row (a stable counting sort, lib/op-layout.c) into `plan`, longs:
 * goff[ng] (the element offset of each position's grad_out row, grouped by table row, positions ascending),
 * toff[nu] (the element offset of each touched table row), seg[nu + 1] (row u owns goff[seg[u] .. seg[u+1])).
 * Work mapping: one work-item per (touched row, column), which sums its positions in order: no atomics, the
 * same bits on every run. dtype codes 0 f32, 1 f16; with `accumulate` the old value is added last.
 * A launch takes positions p0 .. p0 + pn of each row's run: all of them in one launch, but on a device with a
 * loop budget (llvmpipe) in passes, the later ones (first = 0) adding to what the earlier stored. */
__kernel void clai_scatter_rows_add(__global uchar *table, __global const uchar *gout, __global const long *plan,
                                    const long nu, const long ng, const long ncols, const long t_sc, const long g_sc,
                                    const int t_dt, const int g_dt, const int accumulate, const long p0,
                                    const long pn, const int first) {
  const long i = get_global_id(0);
  if (i >= nu * ncols) return;
  const long u = i / ncols, c = i % ncols;
  __global const long *goff = plan, *toff = plan + ng, *seg = plan + ng + nu;
  const long lo = seg[u] + p0, end = min(seg[u + 1], lo + pn);
  if (lo >= end && !first) return; /* this row's run ended in an earlier pass */
  float s = 0.0f;
  if (g_dt == 0) {
    __global const float *g = (__global const float *)gout + c * g_sc;
    for (long p = lo; p < end; p++) s += g[goff[p]];
  } else {
    __global const half *g = (__global const half *)gout + c * g_sc;
    for (long p = lo; p < end; p++) s += vload_half(goff[p], g);
  }
  const int add = first ? accumulate : 1;
  const long t = toff[u] + c * t_sc;
  if (t_dt == 0) {
    __global float *tp = (__global float *)table;
    tp[t] = add ? tp[t] + s : s;
  } else {
    __global half *tp = (__global half *)table;
    vstore_half(add ? vload_half(t, tp) + s : s, t, tp);
  }
}
