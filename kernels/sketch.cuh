// Summary mode inside the fused kernel: every monthly value goes straight into its
// quantile-sketch bucket, so no per-path monthly data is ever written. The bucketing is
// gpusim/sketch.py's `bucket_index`, step for step (read the two side by side); its
// constants come from there as kernel arguments, so the two cannot drift apart.
#pragma once
#include "common.cuh"
#ifndef __CUDACC__
#include <string.h>
#endif

// The bucket layout of gpusim/sketch.py: buckets 0 .. 2·side, zero in the middle.
struct SketchLayout {
  double min_magnitude;  // MIN_MAGNITUDE: smaller magnitudes count as zero
  double log_gamma;      // LOG_GAMMA = ln((1+α)/(1−α))
  int key_min, key_max;  // KEY_MIN, KEY_MAX
  int buckets;           // BUCKETS = 2·(KEY_MAX − KEY_MIN + 1) + 1
};

// sketch.bucket_index for one value: ⌈ln|x| / ln γ⌉ clipped to the keys, signed distance
// from the zero bucket. NaN lands in the zero bucket; the kernel counts it separately.
// The reference arithmetic, step for step; sketch_bucket below uses the edge table.
GPUSIM_COLD int sketch_bucket_by_log(const SketchLayout& k, double x) {
  const int zero = (k.buckets - 1) / 2;
  double work = fabs(x);                               // work = |x|
  const bool tiny = work < k.min_magnitude;            // tiny = work < MIN_MAGNITUDE
  work = gs_max(work, k.min_magnitude);                // maximum(work, MIN_MAGNITUDE)
  work = log(work);                                    // log
  work = work / k.log_gamma;                           // /= LOG_GAMMA
  work = ceil(work);                                   // ceil
  work = gs_clip(work, (double)k.key_min, (double)k.key_max);  // clip(KEY_MIN, KEY_MAX)
  work = work - (double)(k.key_min - 1);               // -= KEY_MIN - 1
  if (x < 0) work = -work;                             // negative where values < 0
  if (tiny || x != x) work = 0.0;                      // work[tiny] = 0
  return zero + (int)work;                             // += ZERO
}

// gpusim.sketch's exact bucket edges and the index over them (generated,
// sketch_edges.cuh): |x| >= GS_EDGES[i] puts x at least i + 2 buckets from zero, and
// GS_SKETCH_INDEX[k] is 1 + the edges at or below the start of sub-range k of magnitudes
// (bits >> GS_SKETCH_INDEX_SHIFT), none of which holds two edges. Global (read-only,
// cached) memory on the device: threads of a warp read different entries, which
// constant memory would serialize.
#include "sketch_edges.cuh"
#ifdef __CUDACC__
__device__ const double gs_sketch_edges_device[GS_SKETCH_EDGE_COUNT] = GS_SKETCH_EDGES;
__device__ const unsigned short gs_sketch_index_device[GS_SKETCH_INDEX_COUNT] = GS_SKETCH_INDEX;
#endif
static const double gs_sketch_edges_host[GS_SKETCH_EDGE_COUNT] = GS_SKETCH_EDGES;
static const unsigned short gs_sketch_index_host[GS_SKETCH_INDEX_COUNT] = GS_SKETCH_INDEX;

GPUSIM_HD const double* sketch_edges() {
#ifdef __CUDA_ARCH__
  return gs_sketch_edges_device;
#else
  return gs_sketch_edges_host;
#endif
}

GPUSIM_HD const unsigned short* sketch_index() {
#ifdef __CUDA_ARCH__
  return gs_sketch_index_device;
#else
  return gs_sketch_index_host;
#endif
}

// The layout the edge table was generated for (the kernel arguments say which is in use).
GPUSIM_HD bool sketch_table_applies(const SketchLayout& k) {
  return k.min_magnitude == GS_SKETCH_MIN_MAGNITUDE && k.log_gamma == GS_SKETCH_LOG_GAMMA &&
         k.key_min == GS_SKETCH_KEY_MIN && k.key_max == GS_SKETCH_KEY_MAX &&
         k.buckets == 2 * GS_SKETCH_SIDE + 1;
}

// sketch.bucket_index for one value, exactly, by the edge table (only for the layout the
// table was made for: sketch_table_applies): the sub-range's entry of the index, plus one
// if |x| is at or above the one edge that can lie in the sub-range above that entry.
// *nonfinite: whether x is NaN or ±Inf (from the same bits, no extra arithmetic).
GPUSIM_HOT int sketch_bucket_by_table(double x, bool* nonfinite) {
  const double a = fabs(x);
  if (!(a >= GS_SKETCH_MIN_MAGNITUDE)) {  // tiny or NaN: the zero bucket
    *nonfinite = a != a;
    return GS_SKETCH_SIDE;
  }
  u64 bits;
#ifdef __CUDA_ARCH__
  bits = (u64)__double_as_longlong(a);
#else
  memcpy(&bits, &a, sizeof bits);
#endif
  *nonfinite = bits >= 0x7ff0000000000000ull;  // Inf (NaN went above)
  const u64 key = gs_min((bits >> GS_SKETCH_INDEX_SHIFT) - (u64)GS_SKETCH_INDEX_BASE,
                         (u64)(GS_SKETCH_INDEX_COUNT - 1));  // Inf: the last sub-range
  const int guess = sketch_index()[key];  // 1 .. SIDE - 1
  const int d = guess + (a >= sketch_edges()[guess - 1] ? 1 : 0);
  return GS_SKETCH_SIDE + (x < 0 ? -d : d);
}

// sketch.bucket_index for one value, exactly.
GPUSIM_HD int sketch_bucket(const SketchLayout& k, double x) {
  bool nonfinite;
  return sketch_table_applies(k) ? sketch_bucket_by_table(x, &nonfinite)
                                 : sketch_bucket_by_log(k, x);
}

// Add one to counts[index]. On the GPU the threads of a warp that hit the same bucket
// (common: early months, capped prices, zero losses) add together in one atomic.
#ifdef __CUDACC__
__device__ __forceinline__ void count_one(unsigned* counts, long long index) {
  const unsigned active = __activemask();
  const unsigned peers = __match_any_sync(active, (unsigned long long)index);
  if ((int)(threadIdx.x & 31u) == __ffs(peers) - 1) atomicAdd(counts + index, __popc(peers));
}
#else
inline void count_one(unsigned* counts, long long index) { counts[index] += 1u; }
#endif
