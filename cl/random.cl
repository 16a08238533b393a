/* random.cl - counter-based random numbers (Philox4x32-10) and dropout. The generator itself
 * (clai_rand_block, clai_rand_u01) is cl/philox.cl, which the host puts before this file (lib/program.c).
 *
 * Every value is a pure function of (seed, offset, i), where i is the element's row-major index in the
 * output's shape: element i takes word i % 4 of the Philox block with counter (g, offset) and key seed,
 * g = i / 4 (counter words: c0 = low and c1 = high half of g, c2 = low and c3 = high half of offset; key
 * words: k0 = low and k1 = high half of seed). Nothing depends on the work-group size or on the device,
 * only the float math that maps words to values (log/cos/sin of the normal) is the device's.
 *
 * Work mapping: one work-item per Philox block, i.e. per four consecutive elements; any strided output
 * (and input, for dropout) through clai_index, so a view's elements get the same numbers a dense tensor of
 * its shape would.
 *
 * Word -> uniform: u = (w >> 8) * 2^-24 in [0, 1) (24 bits, exact in float). Normal: Box-Muller on the
 * pairs (w0, w1) and (w2, w3): u1 = ((w0 >> 8) + 1) * 2^-24 in (0, 1], u2 = (w1 >> 8) * 2^-24,
 * r = sqrt(-2 ln u1), element 4g + 0 = r cos(2 pi u2), 4g + 1 = r sin(2 pi u2), the same for the second pair.
 * Dropout keeps element i when u(i) < 1 - p.
 *
 * Contraction of a + d * u into an fma is off (OpenCL C 1.2 section 6.10 allows it by default), so uniform
 * values and dropout are bit-identical on every device; normal values depend on the device's log, sqrt,
 * cos and sin (within their OpenCL ulp bounds). */
#pragma OPENCL FP_CONTRACT OFF

inline float2 clai_box_muller(const uint w0, const uint w1) {
  const float u1 = (float)((w0 >> 8) + 1u) * 0x1.0p-24f;
  const float t = 2.0f * clai_rand_u01(w1); /* the angle in units of pi: exact, no range reduction */
  const float r = sqrt(-2.0f * log(u1));
  return (float2)(r * cospi(t), r * sinpi(t));
}

/* dist 0: uniform, value = a + (b - a) * u. dist 1: normal, value = a + b * z. */
#define CLAI_RAND(SFX, T, ST)                                                                            \
  __kernel void clai_rand_##SFX(__global T *out, CLAI_INDEX_ARGS(ix), const long seed, const long offset, \
                                const int dist, const float a, const float b) {                        \
    const long g = get_global_id(0);                                                                   \
    const long base = g * 4;                                                                           \
    if (base >= CLAI_IX_NUMEL(ix)) return;                                                                      \
    const uint4 w = clai_rand_block(g, seed, offset);                                                  \
    float v[4];                                                                                        \
    if (dist == 0) {                                                                                   \
      const float d = b - a;                                                                           \
      v[0] = a + d * clai_rand_u01(w.x);                                                               \
      v[1] = a + d * clai_rand_u01(w.y);                                                               \
      v[2] = a + d * clai_rand_u01(w.z);                                                               \
      v[3] = a + d * clai_rand_u01(w.w);                                                               \
    } else {                                                                                           \
      const float2 z0 = clai_box_muller(w.x, w.y), z1 = clai_box_muller(w.z, w.w);                     \
      v[0] = a + b * z0.x;                                                                             \
      v[1] = a + b * z0.y;                                                                             \
      v[2] = a + b * z1.x;                                                                             \
      v[3] = a + b * z1.y;                                                                             \
    }                                                                                                  \
    if (CLAI_IX_NDIM(ix) == 1 && CLAI_IX_STRIDE_IN(ix, 0) == 1 && base + 4 <= CLAI_IX_NUMEL(ix)) { /* dense: no index math */   \
      const long o = CLAI_IX_OFF(ix, 0) + base;                                                              \
      ST(out, o, v[0]);                                                                                \
      ST(out, o + 1, v[1]);                                                                            \
      ST(out, o + 2, v[2]);                                                                            \
      ST(out, o + 3, v[3]);                                                                            \
      return;                                                                                          \
    }                                                                                                  \
    for (int j = 0; j < 4 && base + j < CLAI_IX_NUMEL(ix); j++) {                                               \
      long o, unused1, unused2;                                                                        \
      CLAI_OFFSETS(ix, base + j, &o, &unused1, &unused2);                                             \
      ST(out, o, v[j]);                                                                                \
    }                                                                                                  \
  }
CLAI_RAND(f32, float, CLAI_ST_F32)
CLAI_RAND(f16, half, CLAI_ST_F16)

/* out = x * m, m = keep ? scale : 0 (so NaN and infinity in x propagate as x * 0 does); the mask, when
 * has_mask, receives m. Operands in ix: 0 = out, 1 = x, 2 = mask. q = 1 - p. */
#define CLAI_DROPOUT(SFX, T, LD, ST)                                                                     \
  __kernel void clai_dropout_##SFX(__global T *out, __global const T *x, __global T *mask,             \
                                   CLAI_INDEX_ARGS(ix), const long seed, const long offset,            \
                                   const float q, const float scale, const int has_mask) {             \
    const long g = get_global_id(0);                                                                   \
    const long base = g * 4;                                                                           \
    if (base >= CLAI_IX_NUMEL(ix)) return;                                                                      \
    const uint4 w = clai_rand_block(g, seed, offset);                                                  \
    const float m0 = clai_rand_u01(w.x) < q ? scale : 0.0f, m1 = clai_rand_u01(w.y) < q ? scale : 0.0f; \
    const float m2 = clai_rand_u01(w.z) < q ? scale : 0.0f, m3 = clai_rand_u01(w.w) < q ? scale : 0.0f; \
    if (CLAI_IX_NDIM(ix) == 1 && CLAI_IX_STRIDE_IN(ix, 0) == 1 && CLAI_IX_STRIDE_IN(ix, 1) == 1 &&                                \
        (!has_mask || CLAI_IX_STRIDE_IN(ix, 2) == 1) && base + 4 <= CLAI_IX_NUMEL(ix)) { /* dense: no index math */      \
      const long oo = CLAI_IX_OFF(ix, 0) + base, ox = CLAI_IX_OFF(ix, 1) + base, om = CLAI_IX_OFF(ix, 2) + base;         \
      ST(out, oo, LD(x, ox) * m0);                                                                     \
      ST(out, oo + 1, LD(x, ox + 1) * m1);                                                             \
      ST(out, oo + 2, LD(x, ox + 2) * m2);                                                             \
      ST(out, oo + 3, LD(x, ox + 3) * m3);                                                             \
      if (has_mask) {                                                                                  \
        ST(mask, om, m0);                                                                              \
        ST(mask, om + 1, m1);                                                                          \
        ST(mask, om + 2, m2);                                                                          \
        ST(mask, om + 3, m3);                                                                          \
      }                                                                                                \
      return;                                                                                          \
    }                                                                                                  \
    const float ms[4] = {m0, m1, m2, m3};                                                              \
    for (int j = 0; j < 4 && base + j < CLAI_IX_NUMEL(ix); j++) {                                               \
      long oo, ox, om;                                                                                 \
      CLAI_OFFSETS(ix, base + j, &oo, &ox, &om);                                                      \
      ST(out, oo, LD(x, ox) * ms[j]);                                                                  \
      if (has_mask) ST(mask, om, ms[j]);                                                               \
    }                                                                                                  \
  }
CLAI_DROPOUT(f32, float, CLAI_LD_F32, CLAI_ST_F32)
CLAI_DROPOUT(f16, half, CLAI_LD_F16, CLAI_ST_F16)
