// Summary mode inside the fused kernel: every monthly value goes straight into its
// quantile-sketch bucket, so no per-path monthly data is ever written. The bucketing is
// gpusim/sketch.py's `bucket_index`, step for step (read the two side by side); its
// constants come from there as kernel arguments, so the two cannot drift apart.
#pragma once
#include "common.cuh"

// The bucket layout of gpusim/sketch.py: buckets 0 .. 2·side, zero in the middle.
struct SketchLayout {
  double min_magnitude;  // MIN_MAGNITUDE: smaller magnitudes count as zero
  double log_gamma;      // LOG_GAMMA = ln((1+α)/(1−α))
  int key_min, key_max;  // KEY_MIN, KEY_MAX
  int buckets;           // BUCKETS = 2·(KEY_MAX − KEY_MIN + 1) + 1
};

// sketch.bucket_index for one value: ⌈ln|x| / ln γ⌉ clipped to the keys, signed distance
// from the zero bucket. NaN lands in the zero bucket; the kernel counts it separately.
GPUSIM_HD int sketch_bucket(const SketchLayout& k, double x) {
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
