/* philox.cl - the counter-based generator Philox4x32-10, shared by the programs that draw random numbers
 * (cl/random.cl, cl/sample.cl); lib/program.c puts it after cl/common.cl and before their own source.
 *
 * clai_rand_block(g, seed, offset) is the block with counter (g, offset) and key seed: counter words c0 =
 * low and c1 = high half of g, c2 = low and c3 = high half of offset; key words k0 = low and k1 = high half
 * of seed. Element i of a stream takes word i % 4 of block i / 4 (cl/random.cl). A word becomes a uniform
 * value in [0, 1) as (w >> 8) * 2^-24 (24 bits, exact in float). */

/* One round with key k; the ten rounds are written out (no loop), so compilers that vectorise across
 * work-items (POCL) see straight-line code. */
#define CLAI_PHILOX_ROUND(c, k0, k1)                                                                     \
  do {                                                                                                 \
    const ulong p0_ = (ulong)0xD2511F53u * c.x, p1_ = (ulong)0xCD9E8D57u * c.z;                         \
    c = (uint4)((uint)(p1_ >> 32) ^ c.y ^ (k0), (uint)p1_, (uint)(p0_ >> 32) ^ c.w ^ (k1), (uint)p0_);  \
  } while (0)

inline uint4 clai_philox4x32_10(uint4 c, const uint2 k) {
  CLAI_PHILOX_ROUND(c, k.x, k.y);
  CLAI_PHILOX_ROUND(c, k.x + 0x9E3779B9u, k.y + 0xBB67AE85u);
  CLAI_PHILOX_ROUND(c, k.x + 2u * 0x9E3779B9u, k.y + 2u * 0xBB67AE85u);
  CLAI_PHILOX_ROUND(c, k.x + 3u * 0x9E3779B9u, k.y + 3u * 0xBB67AE85u);
  CLAI_PHILOX_ROUND(c, k.x + 4u * 0x9E3779B9u, k.y + 4u * 0xBB67AE85u);
  CLAI_PHILOX_ROUND(c, k.x + 5u * 0x9E3779B9u, k.y + 5u * 0xBB67AE85u);
  CLAI_PHILOX_ROUND(c, k.x + 6u * 0x9E3779B9u, k.y + 6u * 0xBB67AE85u);
  CLAI_PHILOX_ROUND(c, k.x + 7u * 0x9E3779B9u, k.y + 7u * 0xBB67AE85u);
  CLAI_PHILOX_ROUND(c, k.x + 8u * 0x9E3779B9u, k.y + 8u * 0xBB67AE85u);
  CLAI_PHILOX_ROUND(c, k.x + 9u * 0x9E3779B9u, k.y + 9u * 0xBB67AE85u);
  return c;
}

inline uint4 clai_rand_block(const long g, const long seed, const long offset) {
  const ulong ug = (ulong)g, uo = (ulong)offset, us = (ulong)seed;
  return clai_philox4x32_10((uint4)((uint)ug, (uint)(ug >> 32), (uint)uo, (uint)(uo >> 32)),
                            (uint2)((uint)us, (uint)(us >> 32)));
}

inline float clai_rand_u01(const uint w) { return (float)(w >> 8) * 0x1.0p-24f; }
