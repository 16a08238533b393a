/* device.c - discovery of every OpenCL platform and device through the ICD loader, ranking, and matching
 * of a device override ("gpu", "cpu", an index or a name substring). Only this file and context.c talk to
 * the platform layer.
 *
 * Discovery runs once per process, under a lock, and its ranked result is kept as a snapshot that is never
 * changed afterwards: every context copies it. The OpenCL spec makes clGetPlatformIDs/clGetDeviceIDs thread
 * safe (appendix A.2), but POCL 3.1 initialises its devices lazily on the first clGetDeviceIDs and lets a
 * second thread through while the first is still inside that initialisation: the second thread sees no
 * device (CL_DEVICE_NOT_FOUND) or a half-built one (a crash in clGetDeviceInfo). Doing the whole discovery
 * in one thread at a time, once, avoids that with any driver. The price is that a device that appears
 * later in the life of the process is not seen; the ICD loader (ocl-icd) reads its vendor list once per
 * process anyway. A discovery that fails or finds no device is not kept, so the next context tries again.
 * The snapshot is the one piece of state shared by all contexts, and it is read-only once taken. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static clai_device_type map_type(cl_device_type t) {
  if (t & CL_DEVICE_TYPE_GPU) return CLAI_DEVICE_DISCRETE_GPU; /* refined below by host-unified memory */
  if (t & CL_DEVICE_TYPE_ACCELERATOR) return CLAI_DEVICE_ACCELERATOR;
  if (t & CL_DEVICE_TYPE_CPU) return CLAI_DEVICE_CPU;
  return CLAI_DEVICE_OTHER;
}

static void get_str(cl_device_id d, cl_device_info what, char *buf, size_t cap) {
  buf[0] = '\0';
  if (clGetDeviceInfo(d, what, cap, buf, NULL) != CL_SUCCESS) {
    /* The value may be longer than buf: read it whole, then truncate. */
    size_t n = 0;
    if (clGetDeviceInfo(d, what, 0, NULL, &n) == CL_SUCCESS && n > 0) {
      char *tmp = malloc(n);
      if (tmp != NULL && clGetDeviceInfo(d, what, n, tmp, NULL) == CL_SUCCESS) {
        strncpy(buf, tmp, cap - 1);
        buf[cap - 1] = '\0';
      }
      free(tmp);
    }
  }
}

static int has_extension(cl_device_id d, const char *ext) {
  size_t n = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &n) != CL_SUCCESS || n == 0) return 0;
  char *s = malloc(n + 1);
  if (s == NULL) return 0;
  int found = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, n, s, NULL) == CL_SUCCESS) {
    s[n] = '\0';
    size_t len = strlen(ext);
    for (char *p = strstr(s, ext); p != NULL; p = strstr(p + 1, ext))
      if ((p == s || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0')) {
        found = 1;
        break;
      }
  }
  free(s);
  return found;
}

void clai__devcaps_query(cl_device_id dev, clai__devcaps *caps) {
  memset(caps, 0, sizeof *caps);
  cl_device_type type = 0;
  cl_ulong u = 0;
  cl_uint align = 0;
  size_t wg = 0;
  clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof type, &type, NULL);
  /* As map_type ranks it: a device that reports several types (Oclgrind says CPU, GPU and accelerator at
   * once) is a GPU, and gets the GPU-shaped kernels. */
  caps->is_cpu = map_type(type) == CLAI_DEVICE_CPU;
  caps->has_fp16 = has_extension(dev, "cl_khr_fp16");
  cl_device_fp_config fp = 0;
  caps->has_fma = clGetDeviceInfo(dev, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL) != CL_SUCCESS ||
                  (fp & CL_FP_FMA) != 0;
  if (clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL) == CL_SUCCESS)
    caps->max_wg_size = wg;
  if (clGetDeviceInfo(dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof u, &u, NULL) == CL_SUCCESS) caps->local_mem = u;
  if (clGetDeviceInfo(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof u, &u, NULL) == CL_SUCCESS) caps->max_alloc = u;
  if (clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof u, &u, NULL) == CL_SUCCESS) caps->global_mem = u;
  if (clGetDeviceInfo(dev, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align, &align, NULL) == CL_SUCCESS)
    caps->mem_align = align / 8;
  if (caps->max_wg_size == 0) caps->max_wg_size = 1;
  cl_uint cu = 0;
  caps->compute_units = clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL) == CL_SUCCESS && cu > 0
                            ? (int)(cu < 4096 ? cu : 4096)
                            : 1;
  /* Mesa's rusticl 22.3 answers CL_KERNEL_LOCAL_MEM_SIZE with twice what a kernel declares (two 8 KiB
   * arrays: 32768; two 16 KiB arrays: 65536, which it then runs anyway on its 32 KiB device). */
  cl_platform_id plat = NULL;
  char pname[64] = "", drv[64] = "";
  if (clGetDeviceInfo(dev, CL_DEVICE_PLATFORM, sizeof plat, &plat, NULL) == CL_SUCCESS && plat != NULL)
    clGetPlatformInfo(plat, CL_PLATFORM_NAME, sizeof pname, pname, NULL);
  clGetDeviceInfo(dev, CL_DRIVER_VERSION, sizeof drv, drv, NULL);
  pname[sizeof pname - 1] = drv[sizeof drv - 1] = '\0';
  caps->local_mem_reported_x2 = strcmp(pname, "rusticl") == 0 && strncmp(drv, "22.", 3) == 0;
  /* llvmpipe (gallivm) ends any loop after 65535 iterations, silently: a kernel that loops longer computes
   * garbage there (measured with rusticl 22.3: a sum of 100000 ones in one loop is 65535). */
  char dname[128] = "";
  clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof dname, dname, NULL);
  dname[sizeof dname - 1] = '\0';
  caps->loop_limit = clai__contains_ci(dname, "llvmpipe") ? 65535 : 0;
  caps->lanes_cpu = caps->is_cpu && clai__contains_ci(dname, "llvmpipe");
  /* POCL's vload_half/vstore_half are software routines slower than the arithmetic around them; its kernels
   * use the bit-level conversions of cl/common.cl instead (CLAI_BITHALF). Not on Oclgrind, which evaluated
   * them wrongly (an f16 store of 1.17 came out as infinity), nor on GPUs, where the builtins are fast. */
  caps->bit_half = caps->is_cpu && strcmp(pname, "Portable Computing Language") == 0;
  caps->nt_store = caps->bit_half;
  caps->assume = caps->bit_half;
  if (clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_CACHE_SIZE, sizeof u, &u, NULL) == CL_SUCCESS) caps->cache_bytes = u;
  /* POCL's CPU drivers compile a kernel's machine code at its first launch, for that launch's work-group
   * size, and keep it in POCL's kernel cache (POCL_CACHE_DIR, on unless POCL_KERNEL_CACHE=0) under a hash of
   * the program's source and options. Taking a program binary costs a second compilation of every kernel
   * of the program (for any work-group size), so libclai leaves caching to POCL there (program.c). Its
   * other drivers (GPUs, remote devices) keep libclai's binary cache. */
  const char *pocl_cache = getenv("POCL_KERNEL_CACHE");
  caps->own_kernel_cache = caps->is_cpu && strcmp(pname, "Portable Computing Language") == 0 &&
                           (pocl_cache == NULL || strcmp(pocl_cache, "0") != 0);
  cl_uint vec = 0;
  if (clGetDeviceInfo(dev, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof vec, &vec, NULL) == CL_SUCCESS)
    caps->vec_float = (int)vec;
  cl_bool unified = CL_FALSE;
  caps->host_unified = clGetDeviceInfo(dev, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL) == CL_SUCCESS &&
                       unified == CL_TRUE;
}

static void fill_info(cl_platform_id p, cl_device_id d, clai_device_info *info) {
  memset(info, 0, sizeof *info);
  char pname[sizeof info->platform];
  pname[0] = '\0';
  clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof pname, pname, NULL);
  pname[sizeof pname - 1] = '\0';
  memcpy(info->platform, pname, sizeof pname);
  get_str(d, CL_DEVICE_NAME, info->name, sizeof info->name);
  get_str(d, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
  get_str(d, CL_DEVICE_VERSION, info->device_version, sizeof info->device_version);
  get_str(d, CL_DRIVER_VERSION, info->driver_version, sizeof info->driver_version);
  get_str(d, CL_DEVICE_OPENCL_C_VERSION, info->opencl_c_version, sizeof info->opencl_c_version);
  cl_device_type type = 0;
  clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
  info->type = map_type(type);
  if (info->type == CLAI_DEVICE_DISCRETE_GPU) {
    /* CL_DEVICE_HOST_UNIFIED_MEMORY (deprecated in 2.0 but present in 1.2) tells an integrated GPU. */
    cl_bool unified = CL_FALSE;
    if (clGetDeviceInfo(d, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL) == CL_SUCCESS &&
        unified)
      info->type = CLAI_DEVICE_INTEGRATED_GPU;
  }
  cl_ulong u = 0;
  cl_uint v = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof u, &u, NULL) == CL_SUCCESS) info->global_mem_bytes = u;
  if (clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof u, &u, NULL) == CL_SUCCESS) info->max_alloc_bytes = u;
  if (clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof v, &v, NULL) == CL_SUCCESS) info->compute_units = v;
  if (clGetDeviceInfo(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof v, &v, NULL) == CL_SUCCESS) info->clock_mhz = v;
  info->has_fp16 = has_extension(d, "cl_khr_fp16");
}

typedef struct ranked {
  clai_device_info info;
  clai__candidate cand;
  int order; /* discovery order, for a stable sort */
} ranked;

/* Implementations that run libclai's kernels far slower than another of the same kind would: Mesa's
 * llvmpipe (a CPU device that ran libclai-like kernels about 6x slower than POCL on the same CPU) and the
 * Oclgrind simulator (which reports itself as a discrete GPU and is about 150x slower than POCL, a tool
 * for finding bugs). They rank after every other device, Oclgrind last. */
static int slow_tier(const clai_device_info *d) {
  if (clai__contains_ci(d->platform, "oclgrind")) return 2;
  if (clai__contains_ci(d->name, "llvmpipe")) return 1;
  return 0;
}

const char *clai__device_rank_note(const clai_device_info *d) {
  switch (slow_tier(d)) {
  case 2: return "the Oclgrind simulator ranks last";
  case 1: return "llvmpipe ranks after other devices (about 6x slower than POCL here)";
  default: return NULL;
  }
}

int clai__device_rank_cmp(const clai_device_info *a, const clai_device_info *b) {
  const int ta = slow_tier(a), tb = slow_tier(b);
  if (ta != tb) return ta < tb ? -1 : 1;
  if (a->type != b->type) return a->type > b->type ? -1 : 1;
  uint64_t sa = (uint64_t)a->compute_units * a->clock_mhz;
  uint64_t sb = (uint64_t)b->compute_units * b->clock_mhz;
  if (sa != sb) return sa > sb ? -1 : 1;
  return 0;
}

static int rank_cmp(const void *pa, const void *pb) {
  const ranked *a = pa, *b = pb;
  int c = clai__device_rank_cmp(&a->info, &b->info);
  return c != 0 ? c : a->order - b->order;
}

/* Discovers and ranks every device into *out (malloc'd, *count entries, possibly none). */
static clai_status discover(ranked **out, int *count_out, char *errbuf, size_t errsize) {
  *out = NULL;
  *count_out = 0;
  cl_uint np = 0;
  cl_int err = clGetPlatformIDs(0, NULL, &np);
  /* The ICD loader answers CL_PLATFORM_NOT_FOUND_KHR (-1001) when no vendor is installed. */
  if (err == -1001 || (err == CL_SUCCESS && np == 0)) return CLAI_OK;
  if (err != CL_SUCCESS) {
    snprintf(errbuf, errsize, "clGetPlatformIDs failed (OpenCL error %s, %d)", clai__cl_errname(err), (int)err);
    return CLAI_E_OPENCL;
  }
  cl_platform_id *plats = calloc(np, sizeof *plats);
  if (plats == NULL) return CLAI_E_OUT_OF_MEMORY;
  clGetPlatformIDs(np, plats, NULL);

  ranked *all = NULL;
  int count = 0;
  clai_status st = CLAI_OK;
  for (cl_uint i = 0; i < np; i++) {
    cl_uint nd = 0;
    if (clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0) continue;
    cl_device_id *devs = calloc(nd, sizeof *devs);
    ranked *grown = realloc(all, (size_t)(count + (int)nd) * sizeof *all);
    if (devs == NULL || grown == NULL) {
      free(devs);
      if (grown != NULL) all = grown;
      st = CLAI_E_OUT_OF_MEMORY;
      break;
    }
    all = grown;
    if (clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_ALL, nd, devs, NULL) == CL_SUCCESS) {
      for (cl_uint j = 0; j < nd; j++) {
        fill_info(plats[i], devs[j], &all[count].info);
        all[count].cand.platform = plats[i];
        all[count].cand.device = devs[j];
        all[count].order = count;
        count++;
      }
    }
    free(devs);
  }
  free(plats);
  if (st != CLAI_OK) {
    free(all);
    return st;
  }
  if (count == 0) {
    free(all);
    return CLAI_OK;
  }
  qsort(all, (size_t)count, sizeof *all, rank_cmp);
  *out = all;
  *count_out = count;
  return CLAI_OK;
}

/* The process-wide snapshot (see the top of the file): written once, under snapshot_lock, then only read. */
static pthread_mutex_t snapshot_lock = PTHREAD_MUTEX_INITIALIZER;
static const ranked *snapshot;
static int snapshot_count;

clai_status clai__devices_enumerate(clai_device_info **infos, clai__candidate **cands, int *n, char *errbuf,
                                    size_t errsize) {
  *infos = NULL;
  *cands = NULL;
  *n = 0;
  /* The lock is taken on every call, not only the first: a context is created far too rarely for it to
   * cost anything, and it keeps the reading of `snapshot` plainly ordered after its writing. */
  if (pthread_mutex_lock(&snapshot_lock) != 0) {
    snprintf(errbuf, errsize, "device discovery: pthread_mutex_lock failed");
    return CLAI_E_OPENCL;
  }
  clai_status st = CLAI_OK;
  if (snapshot == NULL) {
    ranked *all = NULL;
    int count = 0;
    st = discover(&all, &count, errbuf, errsize);
    if (st == CLAI_OK && count > 0) {
      snapshot = all;
      snapshot_count = count;
    }
  }
  const ranked *all = snapshot;
  const int count = snapshot_count;
  pthread_mutex_unlock(&snapshot_lock);
  if (st != CLAI_OK || all == NULL) return st;
  *infos = calloc((size_t)count, sizeof **infos);
  *cands = calloc((size_t)count, sizeof **cands);
  if (*infos == NULL || *cands == NULL) {
    free(*infos);
    free(*cands);
    *infos = NULL;
    *cands = NULL;
    snprintf(errbuf, errsize, "clai_context_init: out of host memory");
    return CLAI_E_OUT_OF_MEMORY;
  }
  for (int i = 0; i < count; i++) {
    (*infos)[i] = all[i].info;
    (*infos)[i].index = i;
    (*cands)[i] = all[i].cand;
  }
  *n = count;
  return CLAI_OK;
}

int clai__devices_match(const clai_device_info *infos, int n, const char *spec, int *order) {
  int k = 0;
  if (spec == NULL || spec[0] == '\0') {
    for (int i = 0; i < n; i++) order[k++] = i;
    return k;
  }
  /* A decimal index into the ranked list. */
  char *end = NULL;
  long idx = strtol(spec, &end, 10);
  if (end != spec && *end == '\0') {
    if (idx >= 0 && idx < n) order[k++] = (int)idx;
    return k;
  }
  int want_gpu = clai__contains_ci(spec, "gpu") && strlen(spec) == 3;
  int want_cpu = clai__contains_ci(spec, "cpu") && strlen(spec) == 3;
  for (int i = 0; i < n; i++) {
    const clai_device_info *d = &infos[i];
    int ok;
    if (want_gpu)
      ok = d->type == CLAI_DEVICE_DISCRETE_GPU || d->type == CLAI_DEVICE_INTEGRATED_GPU;
    else if (want_cpu)
      ok = d->type == CLAI_DEVICE_CPU;
    else
      ok = clai__contains_ci(d->name, spec) || clai__contains_ci(d->platform, spec) ||
           clai__contains_ci(d->vendor, spec);
    if (ok) order[k++] = i;
  }
  return k;
}
