#!/bin/sh
# matmul-packed-tiles.sh - the packed family's tiles that the device running the suite may not pick itself:
# AVX-512's default (14 x 32, skinny tiles of 8 rows), and the other tiles of one or several vectors per row
# (rm x cn * vw) and skinny row counts (srm) that `clai tune` or a user may pick, each forced with
# CLAI_GEMM=packed and CLAI_GEMM_PARAMS, so they are checked on AVX2 machines and GPUs too.
# For each tile: test-matmul (small shapes: every size class, edge tiles in M, N and K, K around the k-block,
# transposes, strided and offset views, batches, f16, the epilogue) and test-fuzz's matmul and convolution
# gradient ops (random shapes and views). The k-block, unroll and vector width vary across the tiles, so
# each value the search can choose meets a multi-vector tile. Small products read A and B in place
# (clai_gemm_direct, packed.direct) with half of the tiles and go through the packing kernels with the
# others (packed.direct=0), so both meet every size class of test-matmul. One TAP line per tile. In small mode (slow
# simulators) and under the sanitizers (CLAI_TEST_SANITIZED: the host code is the same for every tile, and
# each run there takes minutes) only the largest tile and the widest one run.
builddir=${CLAI_BUILDDIR:-.}
if [ "${CLAI_TEST_SIZE:-}" = small ] || [ -n "${CLAI_TEST_SANITIZED:-}" ]; then
  tiles="packed.rm=14,packed.cn=2,packed.lx=2,packed.ly=4,packed.srm=8,packed.kb=4096,packed.uk=1
packed.rm=8,packed.cn=3,packed.kb=128,packed.uk=8,packed.srm=5,packed.direct=0"
else
  tiles="packed.rm=8,packed.cn=1,packed.srm=8
packed.rm=6,packed.cn=2,packed.lx=2,packed.ly=6,packed.srm=16,packed.direct=0
packed.rm=8,packed.cn=2,packed.kb=128,packed.uk=1
packed.rm=10,packed.cn=2,packed.kb=512,packed.uk=8,packed.direct=0
packed.rm=12,packed.cn=2,packed.kb=128
packed.rm=14,packed.cn=2,packed.lx=2,packed.ly=4,packed.srm=8,packed.kb=4096,packed.uk=1
packed.rm=6,packed.cn=3,packed.kb=512,packed.srm=3,packed.direct=0
packed.rm=8,packed.cn=3,packed.kb=128,packed.uk=8
packed.rm=12,packed.cn=2,packed.vw=8,packed.lx=4,packed.ly=4,packed.direct=0"
fi
n=$(echo "$tiles" | wc -l)
echo "1..$n"
i=0
rc=0
for t in $tiles; do
  i=$((i + 1))
  out=$(CLAI_GEMM=packed CLAI_GEMM_PARAMS=$t CLAI_TEST_SIZE=small "$builddir/tests/test-matmul" 2>&1 &&
        CLAI_GEMM=packed CLAI_GEMM_PARAMS=$t CLAI_TEST_OPS=matmul,conv2d_backward_weight \
          CLAI_TEST_CASES=${CLAI_TEST_CASES:-300} "$builddir/tests/test-fuzz" 2>&1)
  if [ $? -eq 0 ]; then
    echo "ok $i - $t"
  else
    echo "not ok $i - $t"
    echo "$out" | grep -v '^ok ' | sed -e 's/^/# /' | head -n 60
    rc=1
  fi
done
exit $rc
