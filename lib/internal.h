/* internal.h - what the files of lib/ share. Nothing here is public; internal functions that are not static
 * are named clai__*. Layers (see DESIGN.md): context/device -> programs/cache -> pool -> tensors -> ops. */
#ifndef CLAI_INTERNAL_H
#define CLAI_INTERNAL_H

#include "config.h"

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "clai.h"

#if defined(__GNUC__)
#define CLAI__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLAI__PRINTF(f, a)
#endif

/* ---- kernel programs and kernels -------------------------------------------------------------------------
 * One program per cl/<name>.cl, each prefixed with cl/common.cl (and cl/philox.cl for RANDOM and SAMPLE:
 * clai__program_source). X(ID, file stem). */
/* The kernel programs. Each is one cl/<stem>.cl file (after cl/common.cl), but for `core`: the small op
 * families most applications use together (cl/elementwise.cl, layout.cl, loss.cl, backward.cl, optim.cl,
 * random.cl; program.c, CLAI__CORE_FILES), one program because POCL pays ~40 ms per program build even when
 * its cache has it (it preprocesses the source with its OpenCL headers to find the entry) and ~0.14 s
 * more per program on a cold start: a training step used five of them. */
#define CLAI__PROGRAMS(X) \
  X(COPY, copy)           \
  X(CORE, core)           \
  X(MATMUL, matmul)       \
  X(MATMUL_PACKED, matmul_packed) \
  X(MATMUL_GPU, matmul_gpu) \
  X(CONV, conv)           \
  X(ATTENTION, attention) \
  X(REDUCE, reduce)       \
  X(NORM, norm)           \
  X(CONV_BWD, conv_backward) \
  X(ATTENTION_BWD, attention_backward) \
  X(NORM_BWD, norm_backward) \
  X(QUANT, quant) \
  X(SAMPLE, sample)

enum clai__program_id {
#define CLAI__P_ENUM_(id, stem) CLAI__P_##id,
  CLAI__PROGRAMS(CLAI__P_ENUM_)
#undef CLAI__P_ENUM_
  CLAI__P_COUNT
};

/* out, x, w, bias; 17 longs (offsets and strides); 18 ints (geometry, groups, has_bias, act) */
#define CLAI__CONV_DIRECT_SIG "bbbbllllllllllllllllliiiiiiiiiiiiiiiiii"
/* cl/conv_backward.cl's data and weight kernels: three buffers; 15 longs (offsets and strides of the three
 * tensors); 16 ints (geometry and groups) */
#define CLAI__CONV_BWD_SIG "bbbllllllllllllllliiiiiiiiiiiiiiii"
/* dq, dk, dv, q, k, v, out, grad_out, lse; their layouts as long8 (v); 8 ints; c2, scale */
#define CLAI__ATT_BWD_SIG "bbbbbbbbbvvvvvvvvviiiiiiiiff"

/* Every kernel: X(ID, program, "name", "argument signature", work dims).
 * The signature lists the arguments as the host passes them (program.c checks it against the kernel's
 * declared arguments in check mode, and uses it for the warm-up launch): b = buffer (a __global pointer),
 * i = int, l = long, f = float, v = long8, x = a clai__index, which the kernel receives as five long8
 * (CLAI_INDEX_ARGS in cl/common.cl). Every kernel must do nothing when its sizes are zero. */
#define CLAI__KERNELS(X)                                                          \
  X(COPY, COPY, "clai_copy", "bbxll", 1)                                          \
  X(COPY_DENSE4, COPY, "clai_copy_dense4", "bblllli", 1)                          \
  X(FILL_F32, COPY, "clai_fill_f32", "bxf", 1)                                    \
  X(FILL_F16, COPY, "clai_fill_f16", "bxf", 1)                                    \
  X(FILL_I32, COPY, "clai_fill_i32", "bxi", 1)                                    \
  X(BINARY_F32, CORE, "clai_binary_f32", "bbbxi", 1)                       \
  X(BINARY_F16, CORE, "clai_binary_f16", "bbbxi", 1)                       \
  X(BINARY_I32, CORE, "clai_binary_i32", "bbbxi", 1)                       \
  X(BINARY_ROWS_F32, CORE, "clai_binary_rows_f32", "bbblllllllliii", 1)    \
  X(UNARY_F32, CORE, "clai_unary_f32", "bbxiff", 1)                        \
  X(UNARY_F16, CORE, "clai_unary_f16", "bbxiff", 1)                        \
  X(UNARY_I32, CORE, "clai_unary_i32", "bbxiff", 1)                        \
  X(GLU_F32, CORE, "clai_glu_f32", "bbxi", 1)                               \
  X(GLU_F16, CORE, "clai_glu_f16", "bbxi", 1)                               \
  X(GLU_ROWS_F32, CORE, "clai_glu_rows_f32", "bbllllllli", 1)               \
  X(GEMM_F32, MATMUL, "clai_gemm_f32", "bbbxiiillllllffbllli", 3)                     \
  X(GEMM_F16, MATMUL, "clai_gemm_f16", "bbbxiiillllllffbllli", 3)                     \
  X(PACK_AB_F32, MATMUL_PACKED, "clai_pack_ab_f32", "bbbbxiiiiilllli", 3)              \
  X(PACK_AB_F16, MATMUL_PACKED, "clai_pack_ab_f16", "bbbbxiiiiilllli", 3)              \
  X(CONV_IGEMM, MATMUL_PACKED, "clai_conv_igemm", "bbbblllllllii" "iiiiiiiiiiiiii" "l", 3) \
  X(CONV_WT, MATMUL_PACKED, "clai_conv_wt", "bblllll" "iiiiiii", 3) \
  X(CONV_PAD, MATMUL_PACKED, "clai_conv_pad", "bblllll" "iiiiiiii", 2) \
  X(CONV_WGRAD, MATMUL_PACKED, "clai_conv_wgrad", "bbb" "iiiiiiiiiiiiiiiii" "l", 3) \
  X(CONV_GYT, MATMUL_PACKED, "clai_conv_gyt", "bblllll" "iiiiii", 2) \
  X(CONV_WGRAD_SUM, MATMUL_PACKED, "clai_conv_wgrad_sum", "bblllll" "iiiiiiii", 2) \
  X(GEMM_PACKED, MATMUL_PACKED, "clai_gemm_packed", "bbbxiiiiiiillffbllli", 3)          \
  X(GEMM_PACKED_SHORT, MATMUL_PACKED, "clai_gemm_packed_short", "bbbxiiiiiiillffbllli", 3) \
  X(GEMM_APACKED_F32, MATMUL_PACKED, "clai_gemm_apacked_f32", "bbbxiiiillllffbllli", 3) \
  X(GEMM_DIRECT, MATMUL_PACKED, "clai_gemm_direct", "bbbxiiiiiiillllffbllli", 3) \
  X(GEMM_APACKED_F16, MATMUL_PACKED, "clai_gemm_apacked_f16", "bbbxiiiillllffbllli", 3) \
  X(GEMM_GPU_F32, MATMUL_GPU, "clai_gemm_gpu_f32", "bbbxiiillllllffbllli", 3)         \
  X(GEMM_GPU_F16, MATMUL_GPU, "clai_gemm_gpu_f16", "bbbxiiillllllffbllli", 3)         \
  X(GEMM_GPU_SKINNY_F32, MATMUL_GPU, "clai_gemm_gpu_skinny_f32", "bbbxiiillllllffbllli", 3) \
  X(GEMM_GPU_SKINNY_F16, MATMUL_GPU, "clai_gemm_gpu_skinny_f16", "bbbxiiillllllffbllli", 3) \
  X(RAND_F32, CORE, "clai_rand_f32", "bxlliff", 1)                               \
  X(RAND_F16, CORE, "clai_rand_f16", "bxlliff", 1)                               \
  X(DROPOUT_F32, CORE, "clai_dropout_f32", "bbbxllffi", 1)                       \
  X(DROPOUT_F16, CORE, "clai_dropout_f16", "bbbxllffi", 1)                       \
  X(SGD_F32, CORE, "clai_sgd_f32", "bbbllllffffii", 1)                            \
  X(SGD_F16, CORE, "clai_sgd_f16", "bbbllllffffii", 1)                            \
  X(ADAM_F32, CORE, "clai_adam_f32", "bbbblllllfffffffi", 1)                      \
  X(ADAM_F16, CORE, "clai_adam_f16", "bbbblllllfffffffi", 1)                      \
  X(SUMSQ_F32, CORE, "clai_sumsq_f32", "bbllll", 1)                               \
  X(SUMSQ_F16, CORE, "clai_sumsq_f16", "bbllll", 1)                               \
  X(NORM_FINISH, CORE, "clai_norm_finish", "bbbllfii", 1)                         \
  X(CLIP_SCALE_F32, CORE, "clai_clip_scale_f32", "bbll", 1)                       \
  X(CLIP_SCALE_F16, CORE, "clai_clip_scale_f16", "bbll", 1)                       \
  X(XENT_COUNT, CORE, "clai_xent_count", "bblllilb", 1)                            \
  X(XENT_INV, CORE, "clai_xent_inv", "bbli", 1)                                    \
  X(XENT_ROWS_F32, CORE, "clai_xent_rows_f32", "bbbbbllllllllllii", 1)             \
  X(XENT_ROWS_F16, CORE, "clai_xent_rows_f16", "bbbbbllllllllllii", 1)             \
  X(XENT_ROWS_WG_F32, CORE, "clai_xent_rows_wg_f32", "bbbbbllllllllllii", 1)       \
  X(XENT_ROWS_WG_F16, CORE, "clai_xent_rows_wg_f16", "bbbbbllllllllllii", 1)       \
  X(LOSS_PARTIAL, CORE, "clai_loss_partial", "bbllbblfi", 1)                       \
  X(LOSS_FINISH, CORE, "clai_loss_finish", "bbbllfii", 1)                          \
  X(MSE_F32, CORE, "clai_mse_f32", "bbbbxlfi", 1)                                  \
  X(MSE_F16, CORE, "clai_mse_f16", "bbbbxlfi", 1)                                  \
  X(UNARY_BWD_F32, CORE, "clai_unary_bwd_f32", "bbbxi", 1)                     \
  X(UNARY_BWD_F16, CORE, "clai_unary_bwd_f16", "bbbxi", 1)                         \
  X(BINARY_BWD_F32, CORE, "clai_binary_bwd_f32", "bbbbxii", 1)                 \
  X(BINARY_BWD_F16, CORE, "clai_binary_bwd_f16", "bbbbxii", 1)                 \
  X(IM2COL_F32, CONV, "clai_im2col_f32", "bbllllliiiiiiiiiiiiiii", 2)              \
  X(IM2COL_F16, CONV, "clai_im2col_f16", "bbllllliiiiiiiiiiiiiii", 2)              \
  X(CONV_EPILOGUE_F32, CONV, "clai_conv_epilogue_f32", "bbblllllllliiiiiii", 2)   \
  X(CONV_EPILOGUE_F16, CONV, "clai_conv_epilogue_f16", "bbblllllllliiiiiii", 2)   \
  X(CONV_DIRECT_F32, CONV, "clai_conv_direct_f32", CLAI__CONV_DIRECT_SIG, 3)      \
  X(CONV_DIRECT_F16, CONV, "clai_conv_direct_f16", CLAI__CONV_DIRECT_SIG, 3)      \
  X(POOL2D_F32, CONV, "clai_pool2d_f32", "bbbllllllllllllllliiiiiiiiiiiiii", 2)    \
  X(POOL2D_F16, CONV, "clai_pool2d_f16", "bbbllllllllllllllliiiiiiiiiiiiii", 2)    \
  X(GLOBAL_AVG_POOL_F32, CONV, "clai_global_avg_pool_f32", "bblllllllliiii", 1)  \
  X(GLOBAL_AVG_POOL_F16, CONV, "clai_global_avg_pool_f16", "bblllllllliiii", 1) \
  X(GATHER_ROWS_B4, CORE, "clai_gather_rows_b4", "bbbbxlllll", 1) \
  X(GATHER_ROWS_B2, CORE, "clai_gather_rows_b2", "bbbbxlllll", 1) \
  X(ONE_HOT, CORE, "clai_one_hot", "bbxli", 1) \
  X(WHERE_B4, CORE, "clai_where_b4", "bbbbxxi", 1) \
  X(WHERE_B2, CORE, "clai_where_b2", "bbbbxxi", 1) \
  X(SCATTER_ROWS_ADD, CORE, "clai_scatter_rows_add", "bbbllllliiilli", 1) \
  X(ATTENTION_D64, ATTENTION, "clai_attention_d64", "bbbbbiiiiiillllllllllllllllllllllllfiiii", 1) \
  X(ATTENTION_D256, ATTENTION, "clai_attention_d256", "bbbbbiiiiiillllllllllllllllllllllllfiiii", 1) \
  X(ROPE_F32, ATTENTION, "clai_rope_f32", "bbxlllllllfii", 1) \
  X(ROPE_F16, ATTENTION, "clai_rope_f16", "bbxlllllllfii", 1) \
  X(UNARY_ROWS_F32, CORE, "clai_unary_rows_f32", "bblllliff", 1)            \
  X(REDUCE_ROWS, REDUCE, "clai_reduce_rows", "bbbxllliiiii", 1)                    \
  X(REDUCE_COLS, REDUCE, "clai_reduce_cols", "bbbxllliiiii", 1)                   \
  X(REDUCE_MERGE, REDUCE, "clai_reduce_merge", "bbxlliiii", 1)                     \
  X(DEQUANT, QUANT, "clai_dequant", "bbxlii", 1)                                     \
  X(GATHER_ROWS_Q, QUANT, "clai_gather_rows_q", "bbbbxllllii", 1)                   \
  X(QMATMUL_F32, QUANT, "clai_qmatmul_f32", "bbbxiiilllllffbllliiii", 2)            \
  X(QUANT_Q8_0, QUANT, "clai_quant_q8_0", "bbxli", 1)                               \
  X(ROUND_Q8K, QUANT, "clai_round_q8k", "bll", 1)                                    \
  X(QGEMV_Q8_0, QUANT, "clai_qgemv_q8_0", "bbbxiiillllffbllliii", 2)                \
  X(QGEMV_Q4_0, QUANT, "clai_qgemv_q4_0", "bbbxiiillllffbllliii", 2)                \
  X(QGEMV_Q4_1, QUANT, "clai_qgemv_q4_1", "bbbxiiillllffbllliii", 2)                \
  X(QGEMV8_Q8_0, QUANT, "clai_qgemv8_q8_0", "bbbxiiillllffbllliii", 2)              \
  X(QGEMV8_Q4_0, QUANT, "clai_qgemv8_q4_0", "bbbxiiillllffbllliii", 2)              \
  X(QGEMV8_Q4_1, QUANT, "clai_qgemv8_q4_1", "bbbxiiillllffbllliii", 2)              \
  X(QGEMV_Q4_K, QUANT, "clai_qgemv_q4_k", "bbbxiiillllffbllliii", 2)                \
  X(QGEMV_Q6_K, QUANT, "clai_qgemv_q6_k", "bbbxiiillllffbllliii", 2)                \
  X(QGEMV8_Q4_K, QUANT, "clai_qgemv8_q4_k", "bbbxiiillllffbllliii", 2)              \
  X(QGEMV8_Q6_K, QUANT, "clai_qgemv8_q6_k", "bbbxiiillllffbllliii", 2)              \
  X(QGEMVP_Q8_0, QUANT, "clai_qgemvp_q8_0", "bbbxiiillllffbllliiibllifii", 2)       \
  X(QGEMVP_Q4_0, QUANT, "clai_qgemvp_q4_0", "bbbxiiillllffbllliiibllifii", 2)       \
  X(QGEMVP_Q4_1, QUANT, "clai_qgemvp_q4_1", "bbbxiiillllffbllliiibllifii", 2)       \
  X(QGEMVP_Q4_K, QUANT, "clai_qgemvp_q4_k", "bbbxiiillllffbllliiibllifii", 2)       \
  X(QGEMVP_Q6_K, QUANT, "clai_qgemvp_q6_k", "bbbxiiillllffbllliiibllifii", 2)       \
  X(SOFTMAX, NORM, "clai_softmax", "bbxllllfiii", 1)                               \
  X(LAYERNORM, NORM, "clai_layernorm", "bbbbbbxlllllllllfii", 1)                  \
  X(COL2IM_F32, CONV_BWD, "clai_col2im_f32", "bbllllliiiiiiiiiiiiiii", 3)           \
  X(COL2IM_F16, CONV_BWD, "clai_col2im_f16", "bbllllliiiiiiiiiiiiiii", 3)           \
  X(CONV_BWD_DATA_F32, CONV_BWD, "clai_conv_bwd_data_f32", CLAI__CONV_BWD_SIG, 3)  \
  X(CONV_BWD_DATA_F16, CONV_BWD, "clai_conv_bwd_data_f16", CLAI__CONV_BWD_SIG, 3)  \
  X(CONV_BWD_WEIGHT_F32, CONV_BWD, "clai_conv_bwd_weight_f32", CLAI__CONV_BWD_SIG, 2) \
  X(CONV_BWD_WEIGHT_F16, CONV_BWD, "clai_conv_bwd_weight_f16", CLAI__CONV_BWD_SIG, 2) \
  X(CONV_BWD_BIAS_F32, CONV_BWD, "clai_conv_bwd_bias_f32", "bbllllllliiii", 2)      \
  X(CONV_BWD_BIAS_F16, CONV_BWD, "clai_conv_bwd_bias_f16", "bbllllllliiii", 2)      \
  X(POOL2D_BWD_F32, CONV_BWD, "clai_pool2d_bwd_f32", "bbbllllllllllllllliiiiiiiiiiiiii", 3) \
  X(POOL2D_BWD_F16, CONV_BWD, "clai_pool2d_bwd_f16", "bbbllllllllllllllliiiiiiiiiiiiii", 3) \
  X(CONV_ROWS_F32, CONV_BWD, "clai_conv_rows_f32", "bbllllliiiii", 2)                 \
  X(CONV_ROWS_F16, CONV_BWD, "clai_conv_rows_f16", "bbllllliiiii", 2)               \
  X(CONV_SUM_ROWS, CONV_BWD, "clai_conv_sum_rows", "bbllli", 1)                     \
  X(ATTENTION_BWD_KV_D64, ATTENTION_BWD, "clai_attention_bwd_kv_d64", CLAI__ATT_BWD_SIG, 1) \
  X(ATTENTION_BWD_Q_D64, ATTENTION_BWD, "clai_attention_bwd_q_d64", CLAI__ATT_BWD_SIG, 1) \
  X(ATTENTION_BWD_KV_D256, ATTENTION_BWD, "clai_attention_bwd_kv_d256", CLAI__ATT_BWD_SIG, 1) \
  X(ATTENTION_BWD_Q_D256, ATTENTION_BWD, "clai_attention_bwd_q_d256", CLAI__ATT_BWD_SIG, 1) \
  X(SOFTMAX_BWD, NORM_BWD, "clai_softmax_bwd", "bbbxlllllfii", 1) \
  X(LAYERNORM_BWD, NORM_BWD, "clai_layernorm_bwd", "bbbbbbxllllllllii", 1) \
  X(NORM_BWD_COLS, NORM_BWD, "clai_norm_bwd_cols", "bbbbbbxlllllllii", 1) \
  X(SOFTMAX_WG, NORM, "clai_softmax_wg", "bbxllllfiiii", 1)                        \
  X(LAYERNORM_WG, NORM, "clai_layernorm_wg", "bbbbbbxlllllllllfiii", 1)            \
  X(SOFTMAX_BWD_WG, NORM_BWD, "clai_softmax_bwd_wg", "bbbxlllllfiii", 1)           \
  X(LAYERNORM_BWD_WG, NORM_BWD, "clai_layernorm_bwd_wg", "bbbbbbxlllllllliii", 1)  \
  X(REDUCE_ROWS_WG, REDUCE, "clai_reduce_rows_wg", "bbbxllliiiiii", 1)             \
  X(REDUCE_COLS_WG, REDUCE, "clai_reduce_cols_wg", "bbbxllliiiiii", 1)             \
  X(SAMPLE_GREEDY, SAMPLE, "clai_sample_greedy", "bbxllllfffii", 1)               \
  X(SAMPLE_FULL, SAMPLE, "clai_sample_full", "bbxllllfffii", 1)                   \
  X(SAMPLE_TOPK, SAMPLE, "clai_sample_topk", "bbxllllfffii", 1)                   \
  X(SAMPLE_TOPP, SAMPLE, "clai_sample_topp", "bbxllllfffii", 1)

enum clai__kernel_id {
#define CLAI__K_ENUM_(id, prog, name, sig, dims) CLAI__K_##id,
  CLAI__KERNELS(CLAI__K_ENUM_)
#undef CLAI__K_ENUM_
  CLAI__K_COUNT
};

/* Index metadata of strided kernels, as the host builds it. Dims are ordered outermost first; up to three
 * operands (0 = output, 1 and 2 = inputs). Unused entries are 0. `ndim` may be 0 for a scalar; `numel` is
 * the product of shape. It never crosses to the device as a struct (implementations disagree on the layout
 * of structs passed by value): clai__launch passes it as five long8 (CLAI__IDX, clai__index_pack). */
#define CLAI__IDX_OPS 3
typedef struct clai__index {
  cl_long ndim;
  cl_long numel;
  cl_long shape[CLAI_MAX_DIMS];
  cl_long stride[CLAI__IDX_OPS][CLAI_MAX_DIMS];
  cl_long offset[CLAI__IDX_OPS];
} clai__index;
/* The five long8 arguments of a clai__index, in the layout cl/common.cl describes (CLAI_INDEX_ARGS):
 * (offsets, ndim, numel), then the shape and each operand's strides right-aligned (innermost dim last). */
void clai__index_pack(const clai__index *ix, cl_long8 out[5]);

/* The device facts that kernel specialisation depends on (so build options are a pure function of it). */
typedef struct clai__devcaps {
  int is_cpu;           /* CL_DEVICE_TYPE_CPU */
  int has_fp16;         /* cl_khr_fp16 */
  int has_fma;          /* CL_FP_FMA in CL_DEVICE_SINGLE_FP_CONFIG: fma() in hardware (CLAI_HW_FMA) */
  size_t max_wg_size;   /* CL_DEVICE_MAX_WORK_GROUP_SIZE */
  uint64_t local_mem;   /* CL_DEVICE_LOCAL_MEM_SIZE */
  uint64_t max_alloc;   /* CL_DEVICE_MAX_MEM_ALLOC_SIZE */
  uint64_t global_mem;  /* CL_DEVICE_GLOBAL_MEM_SIZE */
  uint32_t mem_align;   /* CL_DEVICE_MEM_BASE_ADDR_ALIGN in bytes */
  int local_mem_reported_x2; /* the driver reports twice a kernel's local memory (rusticl 22.x; device.c) */
  int64_t loop_limit;   /* most loop iterations a work-item runs, all its loops together (llvmpipe: 65535,
                           then every loop stops at once, silently); 0: none */
  int host_unified;     /* CL_DEVICE_HOST_UNIFIED_MEMORY: device memory is host memory (CPU, integrated GPU);
                           the pool then allocates host-accessible buffers, so a map is not a copy */
  int bit_half;         /* POCL: half loads and stores through cl/common.cl's bit conversions (CLAI_BITHALF) */
  int compute_units;    /* CL_DEVICE_MAX_COMPUTE_UNITS (at least 1): the threads POCL runs work-groups on */
  uint64_t cache_bytes; /* CL_DEVICE_GLOBAL_MEM_CACHE_SIZE (0 if not reported; POCL: the last-level cache) */
  int nt_store;         /* POCL on a CPU: its Clang compiles __builtin_nontemporal_store (CLAI_NTSTORE) */
  int assume;           /* POCL on a CPU: the kernels may tell its compiler what holds (CLAI_ASSUME; Oclgrind
                           21.10 cannot run the llvm.assume that __builtin_unreachable becomes) */
  int lanes_cpu;        /* a CPU device that runs a work-group's items in SIMD lanes, where barriers, nested
                           loops and private arrays cost several times over (llvmpipe): the generic GEMM
                           family without k-block barriers (KBAR=0) is its default */
  int own_kernel_cache; /* the implementation compiles each kernel's code at its first launch and keeps it
                           in a cache of its own, keyed by the program's source and options (POCL, unless
                           POCL_KERNEL_CACHE=0); see program.c */
  int vec_float;        /* CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT: floats per hardware vector register (POCL on
                           x86: 16 with AVX-512, 8 with AVX/AVX2, 4 with SSE); 0 when not reported */
} clai__devcaps;

/* The matmul kernel families (op-matmul.c). Each handles every dtype, stride, transpose and batch of
 * clai_matmul and the fused epilogue; a context builds the program of its family only. */
enum clai__gemm_family {
  CLAI__GEMM_GENERIC = 0, /* cl/matmul.cl: register tiles read straight from global memory, any device */
  CLAI__GEMM_PACKED = 1,  /* cl/matmul_packed.cl: pack, then a CPU-shaped register-tile kernel (CPU default) */
  CLAI__GEMM_GPU = 2,     /* cl/matmul_gpu.cl: local-memory tiles (GPU default) */
  CLAI__GEMM_FAMILIES = 3
};

/* The shape classes that decide between libclai's kernels and CLBlast (bits of clai__gemm_config.clblast):
 * skinny M <= 16, small below 256^3 multiply-adds in all, large the rest (clai__gemm_shape_class). */
enum { CLAI__SHAPE_SKINNY = 1, CLAI__SHAPE_SMALL = 2, CLAI__SHAPE_LARGE = 4, CLAI__SHAPE_ALL = 7 };
int clai__gemm_shape_class(int64_t M, int64_t N, int64_t K, int64_t batch);

/* Work-group shapes and tile parameters of the matmul kernels for a device: built-in defaults per device
 * class (clai__gemm_config_default), replaced by the values `clai tune` stored for the device (tune.c). */
typedef struct clai__gemm_config {
  int family;                            /* enum clai__gemm_family */
  struct clai__gemm_generic {            /* cl/matmul.cl */
    int rm, vw, kb;                      /* rows of C per work-item, columns (vector width), k-block */
    int lx, ly;                          /* local size along rows, columns */
  } generic;
  struct clai__gemm_packed {             /* cl/matmul_packed.cl */
    int rm, vw, kb, uk, pk;              /* tile rows, vector width, k-block, k-unroll, k per packing item */
    int cn;                              /* vectors per tile row: the tile is rm x (cn * vw) */
    int lx, ly;                          /* local size of the compute kernel */
    int skinny;                          /* M up to this uses the skinny kernel (A packed, B read directly) */
    int srm;                             /* rows of the skinny kernel's tile (srm x vw) and of its A panels */
    int pack_lx;                         /* local size (along k) of the packing kernel */
    int direct;                          /* products with (M + N) * K up to this read A and B in place */
  } packed;
  struct clai__gemm_gpu {                /* cl/matmul_gpu.cl */
    int rm, vw, kb, lx, ly;              /* RM x VW per work-item, k-tile, LX x LY work-items */
    int srm, slx, sly;                   /* the skinny kernel: M up to srm * slx */
  } gpu;
  int clblast;                           /* CLAI__SHAPE_* classes run by CLBlast (0: none; needs HAVE_CLBLAST) */
  int tuned;                             /* 1 when the values came from `clai tune` */
} clai__gemm_config;

/* ---- the memory pool (pool.c) -------------------------------------------------------------------------- */
typedef struct clai__buffer {
  cl_mem mem;
  uint64_t bytes;               /* capacity (the size class) */
  uint64_t size;                /* bytes asked for by the tensor it was allocated for: views stay inside */
  int cls;                      /* size class, -1: not pooled (released when free) */
  int refs;                     /* views using it */
  struct clai__buffer *next;    /* free list link */
} clai__buffer;

#define CLAI__POOL_CLASSES 256
typedef struct clai__pool {
  clai__buffer *free_list[CLAI__POOL_CLASSES];
  uint64_t limit;               /* most bytes kept cached */
  uint64_t bytes_in_use, bytes_cached, bytes_peak;
  uint64_t device_allocs, device_frees, hits;
} clai__pool;

/* ---- quantized tensors (op-quant.c, cl/quant.cl) --------------------------------------------------------
 * clai_matmul with a quantized B runs the one-pass kernel up to this M, and above it dequantizes B in chunks
 * of at most CLAI__QCHUNK_BYTES (f32) into the float GEMM of the device's family. */
#define CLAI__QMATMUL_MAX_M 16
#define CLAI__QGEMV_MAX_M 4 /* the format-specialised kernel's rows (QROWS in cl/quant.cl) */
#define CLAI__QGEMV8_STAGE 4096 /* Q8_0 activations the kernel stages (M * K; QSTAGE in cl/quant.cl) */
#define CLAI__QCHUNK_BYTES ((uint64_t)64 << 20)
/* dst (f32 or f16, any strides, dst's shape) = dequantized src (quantized, broadcasting over its leading dims;
 * the last dim must equal dst's). Arguments are the caller's to check. */
clai_status clai__dequant(clai_context *ctx, clai_tensor *dst, const clai_tensor *src, const char *fn);
/* clai_copy where src or dst is quantized (checked here): dequantize, or copy blocks between two tensors of
 * one quantized dtype and shape. */
clai_status clai__copy_quant(clai_context *ctx, clai_tensor *dst, const clai_tensor *src, const char *fn);

/* ---- tensors (tensor.c) -------------------------------------------------------------------------------- */
struct clai_tensor {
  clai_context *ctx;
  clai__buffer *buf;
  clai_dtype dtype;
  int ndim;
  int64_t shape[CLAI_MAX_DIMS];
  int64_t strides[CLAI_MAX_DIMS]; /* in elements */
  int64_t offset;                 /* in elements */
  struct clai_tensor *prev, *next; /* the context's list of live tensors */
  /* A live host mapping (tensor-map.c): the pointer clEnqueueMapBuffer gave (NULL for 0 elements), the event
   * of an asynchronous map (NULL once waited for), mapped is 1 while the mapping lives. */
  int mapped;
  void *map_ptr;
  cl_event map_event;
};

/* ---- the context (context.c) -------------------------------------------------------------------------- */
/* Kernel profiling (profile.c): launches record an event each; the events are resolved into per-kernel sums
 * in batches, so a long run keeps a bounded number of events alive. */
#define CLAI__PROFILE_BATCH 256
typedef struct clai__profile {
  int on;
  int npending;
  cl_event pending[CLAI__PROFILE_BATCH];
  int pending_kernel[CLAI__PROFILE_BATCH];
  uint64_t launches[CLAI__K_COUNT];
  uint64_t ns[CLAI__K_COUNT];
} clai__profile;

#define CLAI__KVARIANTS 4 /* see clai_context.kvariant */

struct clai_context {
  cl_platform_id platform;
  cl_device_id device;
  cl_context cl;
  cl_command_queue queue;
  clai__devcaps caps;
  clai__gemm_config gemm;
  size_t local_1d;              /* work-group size of 1-D kernels */

  clai_device_info *devices;    /* every device seen, ranked */
  int ndevices;
  int chosen;                   /* index into devices */

  cl_program programs[CLAI__P_COUNT];
  cl_kernel kernels[CLAI__K_COUNT];
  int check_args;               /* check mode: every argument checked against its declaration (program.c) */
  struct clai__karg *kargs[CLAI__K_COUNT]; /* check mode: each kernel's declared arguments */
  int knargs[CLAI__K_COUNT];
  size_t klocal[CLAI__K_COUNT][3]; /* work-group size of each kernel, fixed at init (see program.c) */
  size_t fixed_wg_limit;        /* a kernel's limit that its declared work-group size exceeded (program.c) */
  int rows_wg;                  /* 1: row ops run their work-group-per-row kernels (CLAI_ROWS; else by device) */
  int rows_forced;              /* 1: rows_wg was set by CLAI_ROWS, not chosen for the device */
  int prologue_fused;           /* 1: clai_matmul_pro fuses its prologue into the decode kernel (CLAI_PROLOGUE) */

  char *cache_dir;              /* NULL: cache off */
  int binaries;                 /* programs go through libclai's binary cache (else the implementation's own
                                   cache serves them: caps.own_kernel_cache, unless CLAI_CACHE_BINARIES=1) */
  double prog_seconds[CLAI__P_COUNT]; /* each program's build time (clai_program_info.build_seconds) */
  unsigned char prog_state[CLAI__P_COUNT]; /* clai_program_info.state */
  /* The launch shapes each kernel has been compiled for (program.c, first_launch): POCL compiles a kernel
   * again for every work-group size and for grids of 65535 work-items or more along a dimension, so the
   * first launch of each such variant is timed alone as build time. klaunched[k] counts the entries of
   * kvariant[k]; at CLAI__KVARIANTS further shapes are no longer timed, and CLAI__KVARIANTS + 1 marks a
   * kernel that its program's warm-up compiled (programs served from libclai's cache). */
  unsigned char klaunched[CLAI__K_COUNT];
  uint64_t kvariant[CLAI__K_COUNT][CLAI__KVARIANTS];
  int eager;                    /* 1: build every program at init; 0: the copy kernels only, the rest on
                                   first use; -1: none at init (clai_context_params.eager -2) */
  /* clai_context_share_builds (share.c): the claims' directory (NULL: not sharing), the role, and per
   * program the hash of everything its binary depends on (share_key_set[p]: computed), which names its
   * claims. */
  char *share_dir;
  int share_role;
  int share_skip;               /* a helper leaves the next kernel shape to the leader that waited for it */
  unsigned char share_key_set[CLAI__P_COUNT];
  uint64_t share_key[CLAI__P_COUNT][2];
  clai__pool pool;
  clai_context_stats stats;
  clai_tensor *tensors;         /* live tensors */
  clai__profile prof;           /* per-kernel device times (profile.c); prof.on == 0 when off */

  char *errmsg;
  size_t errcap;
};

/* ---- compiling once for several processes (share.c) ------------------------------------------------------
 * clai__claim_take opens the claim `name` in dir and locks it: CLAI__CLAIM_MINE (the caller compiles, then
 * clai__claim_release(fd, ok)), CLAI__CLAIM_DONE (compiled by someone already; nothing is held),
 * CLAI__CLAIM_BUSY (another holds it; only without wait) or CLAI__CLAIM_NONE (the file cannot be used:
 * compile alone). */
enum { CLAI__CLAIM_NONE, CLAI__CLAIM_MINE, CLAI__CLAIM_DONE, CLAI__CLAIM_BUSY };
int clai__claim_take(const char *dir, const char *name, int wait, int *fd);
void clai__claim_release(int fd, int ok);
/* Whether a leader waited for the claim `name` (see share.c). */
int clai__claim_wanted(const char *dir, const char *name);

/* ---- errors (status.c) ---------------------------------------------------------------------------------
 * clai__error() records a message on ctx and returns status, so a check reads
 *   if (bad) return clai__error(ctx, CLAI_E_SHAPE, "clai_matmul: ...", ...);
 * clai__cl_error() also appends the OpenCL error's name. ctx may be NULL (nothing is recorded). */
clai_status clai__error(clai_context *ctx, clai_status status, const char *fmt, ...) CLAI__PRINTF(3, 4);
clai_status clai__cl_error(clai_context *ctx, cl_int err, const char *fmt, ...) CLAI__PRINTF(3, 4);
void clai__clear_error(clai_context *ctx);
const char *clai__cl_errname(cl_int err);
/* Maps an OpenCL error to a status: allocation failures to CLAI_E_OUT_OF_MEMORY, the rest to E_OPENCL. */
clai_status clai__cl_status(cl_int err);

/* ---- small utilities (util.c) ------------------------------------------------------------------------- */
uint64_t clai__hash64(const void *data, size_t len, uint64_t seed);
double clai__now(void);
/* a * b and a + b for non-negative sizes; return 0 and leave *out unchanged on overflow. */
int clai__mul_ok(uint64_t a, uint64_t b, uint64_t *out);
int clai__add_ok(uint64_t a, uint64_t b, uint64_t *out);
/* Case-insensitive substring search. */
int clai__contains_ci(const char *haystack, const char *needle);
/* snprintf that appends to buf (of capacity cap) at *len, truncating safely. */
void clai__appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...) CLAI__PRINTF(4, 5);

/* ---- devices (device.c) -------------------------------------------------------------------------------- */
typedef struct clai__candidate {
  cl_platform_id platform;
  cl_device_id device;
} clai__candidate;

/* Enumerates and ranks every device. On success *infos and *cands are malloc'd arrays of *n entries (n may
 * be 0). On failure returns a status with a message in errbuf. */
clai_status clai__devices_enumerate(clai_device_info **infos, clai__candidate **cands, int *n, char *errbuf,
                                    size_t errsize);
/* Index of the devices that `spec` selects, in rank order, into `order` (capacity n); returns the count,
 * or -1 if spec is not understood. spec NULL or "" selects all. */
int clai__devices_match(const clai_device_info *infos, int n, const char *spec, int *order);
void clai__devcaps_query(cl_device_id dev, clai__devcaps *caps);
/* The ranking: < 0 when a ranks before b (known slow implementations last, then by type, then compute units
 * times clock), 0 for a tie. */
int clai__device_rank_cmp(const clai_device_info *a, const clai_device_info *b);
/* Why a device ranks below others of its type (a known slow implementation), or NULL. */
const char *clai__device_rank_note(const clai_device_info *d);

/* ---- programs and the binary cache (program.c, cache.c) ------------------------------------------------ */
/* Builds (or loads from the cache) the programs for ctx's device that are needed at init: all of them when
 * ctx->eager, else the copy program; the others come when clai__launch or clai__kernel_ready first needs
 * them. */
clai_status clai__programs_init(clai_context *ctx);
/* Makes sure the program of `kernel` is built (or loaded); a build failure is CLAI_E_BUILD with the log. */
clai_status clai__kernel_ready(clai_context *ctx, int kernel);
void clai__programs_free(clai_context *ctx);
/* Rebuilds the matmul program of ctx->gemm's family (releasing the others) after ctx->gemm changed; with
 * use_cache 0 nothing is read from or written to the cache (clai_tune's candidates). */
clai_status clai__programs_reload_gemm(clai_context *ctx, int use_cache);
/* The first lines of every cache key: libclai version, `what`, device, device and driver versions, platform
 * (malloc'd, with room for `extra` more bytes). */
char *clai__device_key(clai_context *ctx, const char *what, size_t extra);
/* The build options of program `prog` for a device with `caps` (pure: used by the SPIR test too). */
void clai__program_options(int prog, const clai__devcaps *caps, const clai__gemm_config *gemm, char *buf,
                           size_t cap);
/* Builds `source` for ctx's device. On failure *out is NULL and the status is CLAI_E_BUILD with the
 * compiler's build log in the message (or another status for an OpenCL failure). `what` names the source. */
clai_status clai__program_build(clai_context *ctx, const char *source, const char *options, const char *what,
                                cl_program *out);
/* The embedded source of a program (common prelude + file), malloc'd; NULL on allocation failure. */
char *clai__program_source(int prog);
const char *clai__program_stem(int prog);

/* The cache directory from params and environment (malloc'd), or NULL when the cache is off. */
char *clai__cache_dir_resolve(const clai_context_params *params);
/* Reads the entry for `key` (NUL-terminated key text) from dir. On success *data is malloc'd. Returns 1 if
 * found and valid, 0 if absent, -1 if present but rejected (truncated, corrupt, foreign). */
int clai__cache_load(const char *dir, const char *key, unsigned char **data, size_t *len);
/* Writes the entry atomically (temporary file + rename). Returns 0 on success, -1 on failure. */
int clai__cache_store(const char *dir, const char *key, const unsigned char *data, size_t len);
/* The file name used for key inside dir (malloc'd), for tests that damage entries. */
char *clai__cache_path(const char *dir, const char *key);

/* ---- pool (pool.c) -------------------------------------------------------------------------------------- */
void clai__pool_init(clai__pool *pool, uint64_t limit);
/* Returns a buffer of at least `bytes` with refs = 1, or NULL with a message on ctx (*status set). */
clai__buffer *clai__pool_alloc(clai_context *ctx, uint64_t bytes, clai_status *status);
/* Drops one reference; at zero the buffer is cached (or released beyond the cap). */
void clai__pool_release(clai_context *ctx, clai__buffer *buf);
void clai__pool_trim(clai__pool *pool);
void clai__pool_stats(const clai__pool *pool, clai_context_stats *stats);

/* ---- tensors (tensor.c) --------------------------------------------------------------------------------- */
/* Checks that t is a live-looking tensor of ctx; records a message naming `fn` and `what` otherwise. A
 * quantized tensor is CLAI_E_DTYPE here, so that every op refuses one unless it asks for it with the _any
 * variants (clai_copy, clai_matmul, clai_gather_rows, the host transfers). */
clai_status clai__check_tensor(clai_context *ctx, const clai_tensor *t, const char *fn, const char *what);
clai_status clai__check_tensor_any(clai_context *ctx, const clai_tensor *t, const char *fn, const char *what);
clai_status clai__check_out_any(clai_context *ctx, const clai_tensor *t, const char *fn, const char *what);
/* A quantized view selects whole blocks: last dim a multiple of the block with stride 1, every other stride
 * (of a dim above 1) and the offset multiples of the block. CLAI_OK for other dtypes. */
clai_status clai__check_blocks(clai_context *ctx, const clai_tensor *v, const char *fn);
/* clai__check_tensor for a tensor an op writes: also CLAI_E_INVALID_ARG, with a message naming `what`, when
 * two of its elements share an address (a stride of 0 on a dim of size > 1, as clai_tensor_expand makes),
 * since the work-items writing them would race. Other self-overlapping strides are not detected. */
clai_status clai__check_out(clai_context *ctx, const clai_tensor *t, const char *fn, const char *what);
/* Fills idx with dst's shape and the strides/offsets of up to three operands already broadcast to that
 * shape (ops[0] is the output). Adjacent dims that are contiguous in every operand are merged. An empty
 * output gives one dim of size 0 (numel 0). */
void clai__index_build(clai__index *idx, int nops, const clai_tensor *const *ops);
/* NumPy broadcast of `src` against `shape`: strides of src aligned to shape (0 where broadcast) into
 * `strides`. Returns 0 if src cannot be broadcast to shape. */
int clai__broadcast_strides(const clai_tensor *src, int ndim, const int64_t *shape, int64_t *strides);
/* A shape to text for messages, e.g. "[2, 3, 4]". Returns buf. */
const char *clai__shape_str(int ndim, const int64_t *shape, char *buf, size_t cap);
/* The row-major strides of a shape into `strides`, size-0 dims counted as 1 (as PyTorch does). Only an empty
 * shape can have strides past INT64_MAX ([2^30, 0, 2^40] is a valid shape of 0 elements): they address
 * nothing, so from the first one that would overflow on they are 0, and nothing overflows. */
void clai__dense_strides(int ndim, const int64_t *shape, int64_t *strides);
/* Element range [lo, hi] a view addresses, in elements of its buffer; 0 if it addresses nothing. */
int clai__tensor_extent(const clai_tensor *t, int64_t *lo, int64_t *hi);
/* Ends t's host mapping, if any, before t is freed (tensor-map.c). */
void clai__tensor_map_drop(clai_tensor *t);
/* 1 if the element ranges of a and b share buffer and overlap. */
int clai__tensors_overlap(const clai_tensor *a, const clai_tensor *b);
/* 1 if an elementwise output may alias the input: no overlap, or element for element (same buffer, offset
 * and strides, the input's broadcast to out's shape). */
int clai__alias_ok(const clai_tensor *out, const clai_tensor *in);
/* 1 if a and b have the same shape. */
int clai__same_shape(const clai_tensor *a, const clai_tensor *b);

/* ---- launching kernels ---------------------------------------------------------------------------------
 * Sets the arguments given as (size, pointer) pairs, rounds global up to the kernel's local size and
 * enqueues it. `global` has the kernel's work dims. Returns a status with a message on failure. */
clai_status clai__launch(clai_context *ctx, int kernel, const size_t *global, int nargs, ...);
/* clai__launch with a work-group size of the caller's instead of the kernel's own (a shape-dependent
 * choice; the caller keeps it within the device's and the kernel's limits). */
clai_status clai__launch_local(clai_context *ctx, int kernel, const size_t *global, const size_t *local, int nargs,
                               ...);
/* The work-group size of the work-group-per-row kernel `kernel` (CLAI_ROWS=wg; cl/common.cl): its own size
 * rounded down to a power of two, at most 256 (the kernels' local arrays). Builds its program if needed. */
clai_status clai__rows_local(clai_context *ctx, int kernel, size_t *local);
/* The launch shape of a work-group-per-row kernel for `units` rows of n elements: *lanes work-items per row
 * (a power of two, n rounded up, at most the whole group), *local from clai__rows_local, and *global for
 * local / lanes rows per work-group. CLAI_E_OVERFLOW when the work-items do not fit a size_t. */
clai_status clai__rows_shape(clai_context *ctx, int kernel, int64_t n, int64_t units, cl_int *lanes, size_t *local,
                             size_t *global);
/* The name of a kernel (CLAI__K_*), as in its .cl source. */
const char *clai__kernel_name(int kernel);

/* Check mode (program.c): a kernel's declared arguments (clGetKernelArgInfo; the program was built with
 * -cl-kernel-arg-info) against a signature as in CLAI__KERNELS. On success *out (malloc'd) holds one entry per
 * argument and *n their count; a mismatch is CLAI_E_BUILD naming the kernel, the argument and both types. */
typedef struct clai__karg {
  size_t size;   /* bytes clSetKernelArg must get: sizeof(cl_mem) for a buffer */
  int pointer;   /* a __global or __constant pointer */
  char type[40]; /* the declared type, for messages, e.g. "float*", "long8" */
} clai__karg;
clai_status clai__kernel_args_check(clai_context *ctx, cl_kernel kern, const char *name, const char *sig,
                                    clai__karg **out, int *n);

/* ---- kernel profiling (profile.c) ---------------------------------------------------------------------
 * clai__profile_event() returns where clEnqueueNDRangeKernel should put its event (NULL when profiling is
 * off); clai__profile_launched() then takes the event over. clai__profile_flush() resolves every pending
 * event; clai__profile_free() releases them. */
cl_event *clai__profile_event(clai_context *ctx);
void clai__profile_launched(clai_context *ctx, int kernel, cl_int err);
clai_status clai__profile_flush(clai_context *ctx);
void clai__profile_free(clai_context *ctx);
#define CLAI__ARG(v) sizeof(v), (const void *)&(v)
/* The argument pair of a clai__index (signature letter x): clai__launch expands it into five long8. */
#define CLAI__IDX_MARK ((size_t)-1)
#define CLAI__IDX(v) CLAI__IDX_MARK, (const void *)&(v)

/* ---- tuning (tune.c) ------------------------------------------------------------------------------------
 * Replaces ctx->gemm's defaults with the values clai_tune() stored for ctx's device, if any are valid. */
void clai__tune_apply(clai_context *ctx);
/* CLAI_GEMM_PARAMS: sets the fields named in text ("packed.rm=12,packed.cn=2": the names clai_tune stores,
 * separated by commas, spaces or newlines) over *cfg. Returns 1, or 0 with the reason in why (an unknown
 * name, a value that is not an integer) and *cfg unchanged. The values are not range-checked here:
 * clai__gemm_config_valid does that for the device. */
int clai__gemm_params_parse(const char *text, clai__gemm_config *cfg, char *why, size_t cap);

/* ---- the CLBlast bridge (clblast.c; without HAVE_CLBLAST it can run nothing) ------------------------------ */
/* 1 if CLBlast can compute this product: f32 operands, no epilogue, each matrix with one unit stride. */
int clai__clblast_can(const clai_context *ctx, const clai_tensor *c, const clai_tensor *a, const clai_tensor *b,
                      int64_t M, int64_t N, int64_t K, int64_t sam, int64_t sak, int64_t sbk, int64_t sbn, int64_t scm,
                      int64_t scn, const clai_matmul_epilogue *ep);
clai_status clai__clblast_gemm(clai_context *ctx, clai_tensor *c, const clai_tensor *a, const clai_tensor *b, int64_t M,
                               int64_t N, int64_t K, int64_t sam, int64_t sak, int64_t sbk, int64_t sbn, int64_t scm,
                               int64_t scn, const clai__index *ix, float alpha, float beta);

/* ---- op helpers shared by the op files ----------------------------------------------------------------- */
/* Whether n iterations of a kernel loop pass the device's loop limit (llvmpipe), and whether a row op over
 * rows of n elements takes the work-group-per-row kernels: ctx->rows_wg (CLAI_ROWS, or a GPU), and whatever
 * CLAI_ROWS says for rows longer than the device's loop limit, which a per-item
 * kernel's walk along the row would pass (a work-group splits the row among its lanes). */
static inline int clai__past_loop_limit(const clai_context *ctx, int64_t n) {
  return ctx->caps.loop_limit > 0 && n > ctx->caps.loop_limit;
}
static inline int clai__rows_wg_for(const clai_context *ctx, int64_t n) {
  return ctx->rows_wg || clai__past_loop_limit(ctx, n);
}
/* The most iterations of a kernel loop each of whose iterations runs `inner` more in loops inside it, within
 * half the device's loop limit (the other half for the kernel's other loops); INT64_MAX without a limit.
 * llvmpipe counts every iteration of every loop of a work-item against one limit of 65535: two loops of
 * 40000 ran 40000 and 25534 times there, and loops of 1000 x 100 stopped at 64251 (rusticl 22.3). */
static inline int64_t clai__loop_cap(const clai_context *ctx, int64_t inner) {
  return ctx->caps.loop_limit > 0 ? ctx->caps.loop_limit / 2 / (inner + 1) : INT64_MAX;
}
/* The number of partial sums of n elements for the fixed-order reductions of op-loss.c and op-optim.c
 * (CLAI_PART_RANGE in cl/common.cl; a second, one-group kernel folds them): on CPUs few long chunks (one core
 * streams through each), on GPUs many short ones, enough work-items to keep the memory system busy; a
 * function of n and the device class alone, so the order of additions (and the result) is the same on every
 * run. On a device with a loop budget (llvmpipe) no partial is longer than it allows, each element taking
 * `inner` more iterations, however many partials that takes. */
static inline int64_t clai__partials(const clai_context *ctx, int64_t n, int64_t inner) {
  const int64_t chunk = ctx->caps.is_cpu ? 2048 : 256, most = ctx->caps.is_cpu ? 1024 : 65536;
  int64_t p = (n + chunk - 1) / chunk;
  p = p < 1 ? 1 : p > most ? most : p;
  const int64_t cap = clai__loop_cap(ctx, inner);
  return (n + p - 1) / p > cap ? (n + cap - 1) / cap : p;
}
/* The rows of a plane that one work-item of cl/conv.cl's plane kernels (im2col, the convolution's epilogue,
 * pooling) walks: all `rows`, but on a device with a loop budget (llvmpipe) as many as keep the walk of
 * per_row iterations a row within it, in bands that the launch spreads over more work-items; 0 when even
 * one row would pass it (the op then fails with CLAI_E_UNSUPPORTED). */
static inline int clai__band_rows(const clai_context *ctx, int64_t rows, int64_t per_row) {
  const int64_t cap = clai__loop_cap(ctx, per_row);
  return cap < 1 ? 0 : rows < 1 ? 1 : (int)(rows <= cap ? rows : cap);
}
/* A stack copy of t, [B, Hk * G, L, D], viewed as [B, Hk, G, L, D]; with broadcast, t is [B, Hk, L, D] and the
 * G dim has stride 0 (a key/value head read by its G query heads). For attention in parts (op-attention.c,
 * op-attention-backward.c). */
clai_tensor clai__heads5(const clai_tensor *t, int64_t Hk, int64_t G, int broadcast);
/* Whether a fused attention kernel that walks L keys (or queries) with head dims D and Dv would pass the
 * device's loop limit, so attention runs in parts there. rusticl 22.3 (llvmpipe), forward, one query: right
 * up to Lk = 400 at D = Dv = 64 and 1000 at 16, wrong from 500 and 2000, and at 100 with 256: about
 * 1.2-1.5 (D + Dv) loop iterations a key. Half the limit at 2 (D + Dv) + 16 a key. */
static inline int clai__attention_in_parts(const clai_context *ctx, int64_t L, int64_t D, int64_t Dv) {
  return L > clai__loop_cap(ctx, 2 * (D + Dv) + 15);
}
/* Checks a per-row statistic of a norm (mean / rstd): f32, contiguous, x's shape without the last dim (or
 * with it as 1), not overlapping `avoid` (may be NULL). op-norm.c; used by the backward too. */
clai_status clai__norm_check_stat(clai_context *ctx, const char *fn, const char *what, const clai_tensor *t,
                                  const clai_tensor *x, const clai_tensor *avoid, const char *avoid_name);
/* Columns per work-item of cl/reduce.cl's clai_reduce_cols (its -DCLAI_COLT; the grid is sized with it). */
int clai__reduce_cols_tile(const clai__devcaps *caps);
/* Query rows per work-item of cl/attention.cl (its -DATT_RQ; the grid is sized with it). */
int clai__attention_rq(const clai__devcaps *caps);
clai_status clai__copy(clai_context *ctx, clai_tensor *dst, const clai_tensor *src, const char *fn);
void clai__gemm_config_default(const clai__devcaps *caps, clai__gemm_config *cfg);
/* The vector registers a CPU device's packed GEMM tile may use (32 where the hardware vectors hold 16
 * floats, AVX-512; else 16, AVX2's count), and whether an rm x (cn * vw) tile of accumulators fits them with
 * the cn vectors of B and the broadcast of A beside it. */
int clai__cpu_vector_regs(const clai__devcaps *caps);
int clai__packed_tile_fits(const clai__devcaps *caps, int rm, int cn, int vw);
/* clai_loss_cross_entropy with the row kernel chosen: 0 as the device suits, 1 one work-item per row,
 * 2 one work-group per row (so tests reach both on any device). */
clai_status clai__loss_cross_entropy(clai_context *ctx, clai_tensor *loss, clai_tensor *grad,
                                     const clai_tensor *logits, const clai_tensor *labels, int ignore_index,
                                     int kernel_choice);
/* clai_sample with the work-group size chosen: 0 as the device suits, else a power of two up to the
 * kernel's limit (so tests can show that the id does not depend on it). op-sample.c. */
clai_status clai__sample(clai_context *ctx, clai_tensor *ids, const clai_tensor *logits, const clai_sample_params *p,
                         int local);
/* 1 when every value of cfg is one the kernels accept on a device with caps (else a reason in why). */
int clai__gemm_config_valid(const clai__gemm_config *cfg, const clai__devcaps *caps, char *why, size_t cap);

/* ---- convolution building blocks (op-conv.c) ----------------------------------------------------------
 * The geometry of a 2-D convolution (or of the windows of a pooling) over NCHW, every field resolved
 * (strides and dilations >= 1, groups >= 1, OH and OW computed). */
typedef struct clai__conv_geom {
  int64_t N, C, H, W;        /* input */
  int64_t O, KH, KW;         /* output channels, window */
  int64_t OH, OW;            /* output plane */
  int64_t sh, sw;            /* stride */
  int64_t pt, pb, pl, pr;    /* padding top, bottom, left, right */
  int64_t dh, dw;            /* dilation */
  int64_t groups;
} clai__conv_geom;
/* Unfolds images n0 .. n0+nb-1 of x ([N, C, H, W], f32 or f16, any view) into `col`, a dense f32 buffer of
 * C*KH*KW rows (c, kh, kw) of nb*OH*OW columns (n, oh, ow), zeros where the window covers the padding: so
 * col is [G, Cg*KH*KW, nb*OH*OW] for G groups. Enqueues one kernel; the caller checked the geometry (every
 * size, and nb*C*KH*KW*OH, below 2^31). */
/* CLAI_E_UNSUPPORTED for `what`: a row of n elements that one work-item would walk past the device's loop
 * budget even alone (clai__band_rows; llvmpipe). */
clai_status clai__row_too_long(clai_context *ctx, const char *what, int64_t n);
clai_status clai__im2col(clai_context *ctx, cl_mem col, const clai_tensor *x, int64_t n0, int64_t nb,
                         const clai__conv_geom *g);
/* The implicit-GEMM convolution of the packed family (op-conv.c; cl/matmul_packed.cl's clai_conv_igemm):
 * clai__conv_igemm_ok says whether it serves these operands (the packed family, all f32). clai__conv_wt makes
 * its B operand bt [G, K, colsp] from w [O, C/G, KH, KW] for the geometry g (flip = 0: the forward's
 * weights; 1: the data gradient's, the window turned around and the channels swapped), colsp the columns
 * padded to whole tiles. clai__conv_igemm runs the convolution of `in` described by g (C, H, W its input,
 * O, OH, OW its output, paddings >= 0) into out [N, O, OH, OW] (any strides) with bias (or NULL) and the
 * activation act, through a zero-padded copy of a chunk of images at a time. */
int clai__conv_igemm_ok(const clai_context *ctx, const clai_tensor *x, const clai_tensor *w, const clai_tensor *out,
                        const clai_tensor *bias);
clai_status clai__conv_wt(clai_context *ctx, clai_tensor **bt, const clai_tensor *w, const clai__conv_geom *g,
                          int flip, int64_t *colsp);
/* The bytes of one image's zero-padded copy (C planes of Hp x Wp floats), or CLAI_E_UNSUPPORTED for a plane the
 * kernels cannot index. */
clai_status clai__conv_padded_bytes(clai_context *ctx, const char *fn, const clai__conv_geom *g, uint64_t *bytes);
/* xp (dense f32 [nb, C, Hp, Wp], Hp = H + pt + pb, Wp = W + pl + pr) = images n0 .. n0+nb-1 of `in` zero-padded
 * as g says (clai_conv_pad; g's C, H, W are in's). */
clai_status clai__conv_pad(clai_context *ctx, cl_mem xp, const clai_tensor *in, int64_t n0, int64_t nb,
                          const clai__conv_geom *g);
clai_status clai__conv_igemm(clai_context *ctx, const char *fn, clai_tensor *out, const clai_tensor *in,
                             const clai_tensor *bt, int64_t colsp, const clai_tensor *bias,
                             const clai__conv_geom *g, int act);
/* Shared by the convolution forward and its gradients (op-conv.c): */
/* CLAI_E_SHAPE unless t is 4-D [N, C, H, W] (what names it in the message). */
clai_status clai__conv_need_4d(clai_context *ctx, const char *fn, const clai_tensor *t, const char *what);
/* CLAI_E_DTYPE unless t has dtype want (f32 or f16), the dtype of the operand named whose. */
clai_status clai__conv_need_dtype(clai_context *ctx, const char *fn, const clai_tensor *t, const char *what,
                                  clai_dtype want, const char *whose);
/* Output length along one axis; 0 when the (dilated) window does not fit the padded input. */
int64_t clai__conv_out_len(int64_t in, int64_t pa, int64_t pb, int64_t k, int64_t d, int64_t s);
/* The geometry of a pooling over x (or grad_x), [N, C, H, W], with params p (stride 0 = the window):
 * CLAI_E_UNSUPPORTED for sizes of 2^31 or more, CLAI_E_SHAPE when the window does not fit the padded input. */
clai_status clai__pool_geom(clai_context *ctx, const char *fn, const clai_tensor *x, const clai_pool2d_params *p,
                            clai__conv_geom *g);
/* Images per chunk for a workspace of per_image bytes per image within budget bytes (at least 1, at most
 * N), with nb * OH * OW below 2^31. */
int64_t clai__conv_chunk_images(const clai__conv_geom *g, uint64_t per_image, uint64_t budget);
/* The byte budget of a chunk's workspaces for ctx's device (small on CPUs, to stay in cache). */
uint64_t clai__conv_col_budget(const clai_context *ctx);
/* The weight w as the [G, O/G, C/G*KH*KW] view of dense f32 rows that the GEMMs take: a view of w itself
 * when it is already that, else of a converted copy in *wt (freed by the caller, like *va). */
clai_status clai__conv_weight_groups(clai_context *ctx, const char *fn, const clai_tensor *w,
                                     const clai__conv_geom *g, clai_tensor **wt, clai_tensor **va);

#endif /* CLAI_INTERNAL_H */
