/* sample.cl - token sampling: one id per row of logits (greedy, temperature, top-k, top-p, min-p).
 *
 * Layout: the host describes the logits as rows of n elements, element j of a row at x[ox + j * xs] (f32,
 * or f16 when xf16), the rows enumerated by a clai_index (operand 0: the row's id in ids, operand 1: the
 * row's first logit), so any strided view works.
 *
 * Work mapping: one work-group of L work-items (a power of two up to CLAI_SMP_MAX_LOCAL) per row; item k
 * walks the contiguous chunk [k * ch, (k + 1) * ch) of the row, ch = ceil(n / L), so chunks are in index
 * order (the tie-break by lower index needs that) and a CPU work-item streams through memory.
 *
 * What the row's id depends on is fixed by the procedure, never by L (clai.h, clai_sample):
 * - greedy (mode 0): a (value, index) argmax per item, combined in a halving tree; the first maximum wins
 *   whatever the tree.
 * - candidates (modes 1 and 2): the kc largest logits by (value desc, index asc). Logits become 32-bit keys
 *   whose unsigned order is the float order (NaN as -inf, -0 as +0), and a radix select narrows the kc-th
 *   largest key 8 bits per pass from the top: a histogram of the next digit of the keys that share the
 *   prefix found so far, one histogram per item (L <= CLAI_SMP_PRIV: no atomics, a CPU's shape) or one
 *   shared by local atomics (integer counts: the same whatever the order). It stops as soon as the keys
 *   from the prefix up fit the list (2 * CLAI_SMP_CAP); else after the last digit the prefix is the kc-th
 *   largest key. Then the items count their chunk's keys above the threshold and equal to it, an exclusive
 *   scan gives every item its slots, and each writes its candidates as (key << 32 | ~index), so that a
 *   descending bitonic sort in local memory orders them by value, then index, and the first kc are the
 *   candidates; keys equal to an exact threshold are taken in index order, as many as are needed. The
 *   sorted list is unique, so nothing after this point depends on L either.
 * - sums are order-fixed: e over the candidates is summed by one work-item in candidate order; a whole
 *   row's sum (modes 2 and 3) by blocks of CLAI_SMP_BLOCK or more elements, each summed in index order by
 *   one work-item, then the block sums in order by one work-item. The draw walks the same sums.
 * Mode 3 (plain temperature sampling, no candidate set): the whole row in index order, by those blocks.
 *
 * Rows of contiguous f32 (xs 1) are read eight elements at a time (vload8) in every pass.
 *
 * Local memory: one 16 KiB pool, used in turn as the histograms (4096 uints), the list (up to 2048 ulongs)
 * and, once sorted, the floats of the block sums and of e and its running sums (2048 floats after the
 * first 1024 entries), plus four arrays of L values for the trees and scans. Within what OpenCL 1.2
 * guarantees (32 KiB). */
#pragma OPENCL FP_CONTRACT OFF

/* the kernels' modes */
#define CLAI_SMP_GREEDY 0 /* clai_sample_greedy */
#define CLAI_SMP_TOPK 1   /* clai_sample_topk: candidates; Z over the candidates */
#define CLAI_SMP_TOPP 2   /* clai_sample_topp: candidates; Z over the whole row */
#define CLAI_SMP_FULL 3   /* clai_sample_full: the whole row in index order */

#define CLAI_SMP_MAX_LOCAL 256
#define CLAI_SMP_CAP 1024    /* the most candidates (CLAI_SAMPLE_MAX_CANDIDATES in clai.h) */
#define CLAI_SMP_PRIV 16     /* work-groups up to this size keep one histogram per item (16 x 256 bins) */
#define CLAI_SMP_BLOCK 256   /* the least block of a row's sum; a row has at most CLAI_SMP_NBLOCK blocks */
#define CLAI_SMP_NBLOCK 1024

inline float clai_smp_ld(__global const float *x, const long i, const int f16) {
  const float v = f16 ? vload_half(i, (__global const half *)x) : x[i];
  return isnan(v) ? -INFINITY : v;
}

/* An unsigned key in the order of the values: -0 is +0 (isnan was handled by clai_smp_ld). */
inline uint clai_smp_key(float v) {
  if (v == 0.0f) v = 0.0f;
  const uint u = as_uint(v);
  return u ^ ((uint)((int)u >> 31) | 0x80000000u); /* negative: all bits flipped; else the sign bit set */
}

inline float clai_smp_unkey(const uint k) { return as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k); }

/* Eight keys at once, for rows of contiguous f32 (the common case: vload8, no index math). */
inline uint8 clai_smp_key8(float8 v) {
  v = select(v, (float8)(-INFINITY), isnan(v));
  v = select(v, (float8)(0.0f), v == 0.0f);
  const uint8 u = as_uint8(v);
  return u ^ (as_uint8(as_int8(u) >> 31) | (uint8)(0x80000000u));
}

/* (v, i) beats (bv, bi): a larger value, or the same value at a lower index; bi < 0 is no element. */
inline int clai_smp_better(const float v, const int i, const float bv, const int bi) {
  if (i < 0) return 0;
  return bi < 0 || v > bv || (v == bv && i < bi);
}

/* The first largest value of the group's row and its index, to every item. */
inline void clai_smp_argmax(__global const float *x, const long ox, const long xs, const long lo, const long hi,
                            const int f16, __local float *rv, __local int *ri, const int lid, const int L, float *v,
                            int *idx) {
  float bv = -INFINITY;
  int bi = -1;
  long j = lo;
  if (xs == 1 && !f16 && hi - lo >= 8) {
    /* lanes: the first largest of elements j + l, j + 8 + l, ...; NaN is never greater, and a lane of -inf
     * and NaN keeps its first index */
    __global const float *q = x + ox;
    float8 vb = (float8)(-INFINITY);
    int8 vi = (int8)((int)lo) + (int8)(0, 1, 2, 3, 4, 5, 6, 7);
    for (; j + 8 <= hi; j += 8) {
      const float8 v = vload8(0, q + j);
      const int8 take = isgreater(v, vb);
      vb = select(vb, v, take);
      vi = select(vi, (int8)((int)j) + (int8)(0, 1, 2, 3, 4, 5, 6, 7), take);
    }
    float tb[8];
    int ti[8];
    vstore8(vb, 0, tb);
    vstore8(vi, 0, ti);
    for (int l = 0; l < 8; l++)
      if (clai_smp_better(tb[l], ti[l], bv, bi)) {
        bv = tb[l];
        bi = ti[l];
      }
  }
  for (; j < hi; j++) {
    const float t = clai_smp_ld(x, ox + j * xs, f16);
    if (bi < 0 || t > bv) {
      bv = t;
      bi = (int)j;
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  rv[lid] = bv;
  ri[lid] = bi;
  for (int st = L >> 1; st > 0; st >>= 1) {
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < st && clai_smp_better(rv[lid + st], ri[lid + st], rv[lid], ri[lid])) {
      rv[lid] = rv[lid + st];
      ri[lid] = ri[lid + st];
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  *v = rv[0];
  *idx = ri[0];
}

/* The row's sum of e = exp((x - m) * inv_t), order-fixed: the block sums go to fb[0 .. nb), and the total is
 * returned to item 0 (the others get 0). Every item must call it. */
inline float clai_smp_row_sum(__global const float *x, const long ox, const long xs, const long n, const int f16,
                              const float m, const float inv_t, const long bs, const long nb, __local float *fb,
                              const int lid, const int L) {
  for (long b = lid; b < nb; b += L) {
    const long end = min(n, (b + 1) * bs);
    float s = 0.0f;
    long j = b * bs;
    if (xs == 1 && !f16) { /* the exps eight at a time, summed in index order all the same */
      float e[8];
      for (; j + 8 <= end; j += 8) {
        float8 v = vload8(0, x + ox + j);
        v = select(v, (float8)(-INFINITY), isnan(v));
        vstore8(exp((v - m) * inv_t), 0, e);
        for (int l = 0; l < 8; l++) s += e[l];
      }
    }
    for (; j < end; j++) s += exp((clai_smp_ld(x, ox + j * xs, f16) - m) * inv_t);
    fb[b] = s;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  float z = 0.0f;
  if (lid == 0)
    for (long b = 0; b < nb; b++) z += fb[b];
  return z;
}

/* The draw's threshold u * total, below total (a product that rounds up to it becomes the float below). */
inline float clai_smp_threshold(const float u, const float total) {
  const float th = u * total;
  return th < total ? th : nextafter(total, 0.0f);
}

/* The body of the four kernels, mode a literal (so each kernel keeps only its own path): every item of the
 * group meets the same barriers in the same order, with no return or break between two of them (POCL 3.1
 * mis-ran a group whose items left a branch that held barriers early); only a group that has no row leaves
 * at the start. */
inline void clai_sample_row(__global int *ids, __global const float *x, const long8 ix_h, const long8 ix_n,
                            const long8 ix_s0, const long8 ix_s1, const long8 ix_s2, const long n, const long xs,
                            const long seed, const long offset, const float inv_t, const float top_p,
                            const float min_p, const int kc, const int xf16, const int mode, __local ulong *pool,
                            __local float *rv, __local int *ri, __local int *ca, __local int *cb, __local uint *sh) {
  __local uint *hist = (__local uint *)pool;
  __local ulong *cand = pool;
  __local float *fb = (__local float *)(pool + CLAI_SMP_CAP); /* 2 * CLAI_SMP_CAP floats */
  const long r = get_group_id(0);
  const int L = (int)get_local_size(0), lid = (int)get_local_id(0);
  long oo, ox, unused;
  CLAI_OFFSETS(ix, r, &oo, &ox, &unused);
  const long ch = (n + L - 1) / L, lo = min(n, (long)lid * ch), hi = min(n, lo + ch);

  const uint4 w = clai_rand_block(r >> 2, seed, offset);
  /* word r % 4 by two binary choices: Oclgrind 21.10 ran the four-way choice (a switch, once LLVM had
   * folded it) wrongly, giving rows 4 and 5 the word of row 7 */
  const uint w01 = (r & 1) != 0 ? w.y : w.x, w23 = (r & 1) != 0 ? w.w : w.z;
  const float u = clai_rand_u01((r & 2) != 0 ? w23 : w01);
  const long bs = max((long)CLAI_SMP_BLOCK, (n + CLAI_SMP_NBLOCK - 1) / CLAI_SMP_NBLOCK), nb = (n + bs - 1) / bs;

  if (mode == CLAI_SMP_GREEDY || mode == CLAI_SMP_FULL) {
    float m;
    int am;
    clai_smp_argmax(x, ox, xs, lo, hi, xf16, rv, ri, lid, L, &m, &am);
    if (mode == CLAI_SMP_GREEDY) {
      if (lid == 0) ids[oo] = am;
    } else {
      const int fin = isfinite(m);
      const float z = clai_smp_row_sum(x, ox, xs, n, xf16, fin ? m : 0.0f, inv_t, bs, nb, fb, lid, L);
      if (lid == 0 && !fin) ids[oo] = am;
      if (lid == 0 && fin) {
        const float th = clai_smp_threshold(u, z);
        float c = 0.0f;
        long b = 0;
        for (; b < nb - 1; b++) {
          if (c + fb[b] > th) break;
          c += fb[b];
        }
        /* within block b, summed from 0 as when its sum was taken, so c + the whole block's sum exceeds th;
         * should exp round differently here than in a vectorised block sum, the block's last token of e > 0 */
        const long end = min(n, (b + 1) * bs);
        long pick = -1, j = b * bs;
        float s = 0.0f;
        int found = 0;
        if (xs == 1 && !xf16) { /* eight at a time, as clai_smp_row_sum took them */
          float e[8];
          for (; !found && j + 8 <= end; j += 8) {
            float8 v = vload8(0, x + ox + j);
            v = select(v, (float8)(-INFINITY), isnan(v));
            vstore8(exp((v - m) * inv_t), 0, e);
            for (int l = 0; l < 8 && !found; l++) {
              s += e[l];
              if (e[l] > 0.0f) pick = j + l;
              found = c + s > th;
            }
          }
        }
        for (; !found && j < end; j++) {
          const float e = exp((clai_smp_ld(x, ox + j * xs, xf16) - m) * inv_t);
          s += e;
          if (e > 0.0f) pick = j;
          found = c + s > th;
        }
        ids[oo] = (int)(pick >= 0 ? pick : b * bs);
      }
    }
    return;
  }

  /* ---- candidates: the kc largest keys ---- */
  /* Radix select, stopping as soon as the keys from the prefix found so far up (its lower digits 0) number
   * at most 2 * CLAI_SMP_CAP, the list's room: nc of them are then sorted and the first kc used. Else after
   * the last digit prefix is the kc-th largest key: every key above it and the first `need` (by index)
   * equal to it, nc = kc. With kc >= n the whole row (prefix 0). */
  const int priv = L <= CLAI_SMP_PRIV, fast = xs == 1 && !xf16;
  uint prefix = 0u;
  int need = kc < n ? kc : 0, done = kc >= n, nc = (int)min((long)kc, n);
  for (int pass = 0; pass < 4; pass++) {
    const int shift = 24 - 8 * pass;
    const uint hmask = pass == 0 ? 0u : 0xffffffffu << (shift + 8);
    barrier(CLK_LOCAL_MEM_FENCE); /* the previous pass's bins and sh have been read */
    if (!done) {
      if (priv) {
        for (int d = 0; d < 256; d++) hist[lid * 256 + d] = 0u;
      } else {
        for (int d = lid; d < 256; d += L) hist[d] = 0u;
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (!done) {
      __local uint *h = priv ? hist + lid * 256 : hist;
      long j = lo;
      if (fast)
        for (; j + 8 <= hi; j += 8) {
          const uint8 k = clai_smp_key8(vload8(0, x + ox + j));
          if (!any((k & hmask) == prefix)) continue;
          uint kk[8];
          vstore8(k, 0, kk);
          for (int l = 0; l < 8; l++) {
            if ((kk[l] & hmask) != prefix) continue;
            if (priv)
              h[(kk[l] >> shift) & 255u]++;
            else
              atomic_inc((volatile __local uint *)&h[(kk[l] >> shift) & 255u]);
          }
        }
      for (; j < hi; j++) {
        const uint k = clai_smp_key(clai_smp_ld(x, ox + j * xs, xf16));
        if ((k & hmask) != prefix) continue;
        if (priv)
          h[(k >> shift) & 255u]++;
        else
          atomic_inc((volatile __local uint *)&h[(k >> shift) & 255u]);
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (!done && priv) /* column d of every item's histogram into row 0 (each item its own columns) */
      for (int d = lid; d < 256; d += L) {
        uint t = 0u;
        for (int q = 0; q < L; q++) t += hist[q * 256 + d];
        hist[d] = t;
      }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid == 0 && !done) {
      uint above = 0u;
      int sel = 0;
      for (int d = 255; d >= 0; d--) {
        if (above + hist[d] >= (uint)need) {
          sel = d;
          break;
        }
        above += hist[d];
      }
      sh[0] = prefix | ((uint)sel << shift);
      sh[1] = (uint)need - above;
      sh[2] = (uint)kc - ((uint)need - above) + hist[sel]; /* the keys from the new prefix up */
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (!done) {
      prefix = sh[0];
      need = (int)sh[1];
      if (sh[2] <= 2 * CLAI_SMP_CAP) {
        nc = (int)sh[2];
        need = 0;
        done = 1;
      }
    }
  }
  const uint klo = need == 0 ? prefix : prefix + 1u, keq = prefix;

  /* slots: an exclusive scan of the chunks' counts, in chunk (index) order */
  int ngt = 0, neq = 0;
  {
    long j = lo;
    if (fast) {
      int8 vg = (int8)(0), ve = (int8)(0);
      for (; j + 8 <= hi; j += 8) {
        const uint8 k = clai_smp_key8(vload8(0, x + ox + j));
        /* select reads only the comparison's sign bit: Oclgrind 21.10 gives -128 for true, not -1 */
        vg += select((int8)(0), (int8)(1), k >= klo);
        ve += select((int8)(0), (int8)(1), k == keq);
      }
      const int4 g4 = vg.lo + vg.hi, e4 = ve.lo + ve.hi;
      ngt = g4.x + g4.y + g4.z + g4.w;
      neq = need > 0 ? e4.x + e4.y + e4.z + e4.w : 0;
    }
    for (; j < hi; j++) {
      const uint k = clai_smp_key(clai_smp_ld(x, ox + j * xs, xf16));
      ngt += k >= klo;
      neq += need > 0 && k == keq;
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE); /* sh and the histograms have been read */
  ca[lid] = ngt;
  cb[lid] = neq;
  barrier(CLK_LOCAL_MEM_FENCE);
  if (lid == 0) {
    int sa = 0, sb = 0;
    for (int q = 0; q < L; q++) {
      const int ta = ca[q], tb = cb[q];
      ca[q] = sa;
      cb[q] = sb;
      sa += ta;
      sb += tb;
    }
    sh[3] = (uint)sa;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  {
    int pa = ca[lid], pb = cb[lid];
    const int ngt_all = (int)sh[3];
    long j = lo;
    if (fast)
      for (; j + 8 <= hi; j += 8) {
        const uint8 k = clai_smp_key8(vload8(0, x + ox + j));
        if (!any(k >= klo) && (need == 0 || !any(k == keq))) continue;
        uint kk[8];
        vstore8(k, 0, kk);
        for (int l = 0; l < 8; l++) {
          const ulong c = ((ulong)kk[l] << 32) | (ulong)(0xffffffffu - (uint)(j + l));
          if (kk[l] >= klo) {
            cand[pa++] = c;
          } else if (need > 0 && kk[l] == keq) {
            if (pb < need) cand[ngt_all + pb] = c;
            pb++;
          }
        }
      }
    for (; j < hi; j++) {
      const uint k = clai_smp_key(clai_smp_ld(x, ox + j * xs, xf16));
      const ulong c = ((ulong)k << 32) | (ulong)(0xffffffffu - (uint)j);
      if (k >= klo) {
        cand[pa++] = c;
      } else if (need > 0 && k == keq) {
        if (pb < need) cand[ngt_all + pb] = c;
        pb++;
      }
    }
  }
  int n2 = 1;
  while (n2 < nc) n2 <<= 1;
  for (int i = nc + lid; i < n2; i += L) cand[i] = 0ul; /* sorts last: every candidate is above 0 */
  barrier(CLK_LOCAL_MEM_FENCE);

  /* bitonic sort, descending */
  for (int k2 = 2; k2 <= n2; k2 <<= 1)
    for (int j2 = k2 >> 1; j2 > 0; j2 >>= 1) {
      for (int i = lid; i < n2; i += L) {
        const int l = i ^ j2;
        if (l > i) {
          const ulong a = cand[i], b = cand[l];
          if ((i & k2) == 0 ? a < b : a > b) {
            cand[i] = b;
            cand[l] = a;
          }
        }
      }
      barrier(CLK_LOCAL_MEM_FENCE);
    }

  const ulong top = cand[0];
  const float m0 = clai_smp_unkey((uint)(top >> 32));
  const int fin = isfinite(m0);
  const float m = fin ? m0 : 0.0f; /* not finite: the greedy id, below; the sums are then unused */
  float z = 0.0f;
  if (mode == CLAI_SMP_TOPP) {
    z = clai_smp_row_sum(x, ox, xs, n, xf16, m, inv_t, bs, nb, fb, lid, L);
    barrier(CLK_LOCAL_MEM_FENCE); /* item 0 has read the block sums */
  }
  __local float *fe = fb, *fs = fb + CLAI_SMP_CAP; /* e and its running sums */
  for (int i = lid; i < kc; i += L) fe[i] = exp((clai_smp_unkey((uint)(cand[i] >> 32)) - m) * inv_t);
  barrier(CLK_LOCAL_MEM_FENCE);
  if (lid == 0 && !fin) ids[oo] = (int)(0xffffffffu - (uint)top);
  if (lid == 0 && fin) {
    float s = 0.0f;
    for (int i = 0; i < kc; i++) {
      s += fe[i];
      fs[i] = s;
    }
    if (mode == CLAI_SMP_TOPK) z = s;
    int cut = kc;
    if (top_p < 1.0f) {
      const float lim = top_p * z;
      for (int i = 0; i < kc; i++)
        if (fs[i] >= lim) {
          cut = i + 1;
          break;
        }
    }
    if (min_p > 0.0f) {
      int c2 = 1; /* e of the first is 1 >= min_p */
      while (c2 < cut && fe[c2] >= min_p) c2++;
      cut = c2;
    }
    const float th = clai_smp_threshold(u, fs[cut - 1]);
    int i = 0;
    while (i < cut - 1 && !(fs[i] > th)) i++;
    ids[oo] = (int)(0xffffffffu - (uint)cand[i]);
  }
}

/* The kernels: a group per row; the whole group leaves at once when there is no row for it. */
#define CLAI_SAMPLE_KERNEL(NAME, MODE)                                                                        \
  __kernel void NAME(__global int *ids, __global const float *x, CLAI_INDEX_ARGS(ix), const long n, const long xs, \
                     const long seed, const long offset, const float inv_t, const float top_p, const float min_p, \
                     const int kc, const int xf16) {                                                           \
    __local ulong pool[2 * CLAI_SMP_CAP];                                                                      \
    __local float rv[CLAI_SMP_MAX_LOCAL];                                                                      \
    __local int ri[CLAI_SMP_MAX_LOCAL], ca[CLAI_SMP_MAX_LOCAL], cb[CLAI_SMP_MAX_LOCAL];                        \
    __local uint sh[4];                                                                                        \
    if ((long)get_group_id(0) >= CLAI_IX_NUMEL(ix) || n <= 0 || get_local_size(0) > CLAI_SMP_MAX_LOCAL ||      \
        kc < 1 || kc > CLAI_SMP_CAP)                                                                           \
      return;                                                                                                  \
    clai_sample_row(ids, x, ix_h, ix_n, ix_s0, ix_s1, ix_s2, n, xs, seed, offset, inv_t, top_p, min_p, kc, xf16, \
                    MODE, pool, rv, ri, ca, cb, sh);                                                           \
  }
CLAI_SAMPLE_KERNEL(clai_sample_greedy, CLAI_SMP_GREEDY)
CLAI_SAMPLE_KERNEL(clai_sample_full, CLAI_SMP_FULL)
CLAI_SAMPLE_KERNEL(clai_sample_topk, CLAI_SMP_TOPK)
CLAI_SAMPLE_KERNEL(clai_sample_topp, CLAI_SMP_TOPP)
