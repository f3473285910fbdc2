// Host build of the fused model: the kernel's headers compiled as plain C++ into a small
// shared library, so CI checks the CUDA arithmetic against numpy without a GPU. The entry
// points are declared with gpusim.cu's parameter lists (engine.cuh) and run its per-thread
// body for every path.
//   g++ -O2 -std=c++14 -shared -fPIC -ffp-contract=off kernels/host.cpp -o libgpusim_host.so
#include "engine.cuh"

#define HOST_CUBE(NAME, R)                                                                   \
  void NAME(GPUSIM_CUBE_PARAMS(R)) {                                                         \
    const CubeOut<R> out = GPUSIM_CUBE_OUT(R);                                               \
    for (long long i = 0; i < n; ++i)                                                        \
      simulate_path(GPUSIM_INPUTS, seed, (u64)(path0 + i), i, out);                          \
  }

#define HOST_SUMMARY(NAME, R)                                                                \
  void NAME(GPUSIM_SUMMARY_PARAMS(R)) {                                                      \
    const SummaryOut<R> out = GPUSIM_SUMMARY_OUT(R);                                         \
    for (long long i = 0; i < n; ++i)                                                        \
      simulate_path(GPUSIM_INPUTS, seed, (u64)(path0 + i), i, out);                          \
  }

extern "C" {

HOST_CUBE(gpusim_host_block_f64, double)
HOST_CUBE(gpusim_host_block_f32, float)
HOST_SUMMARY(gpusim_host_summary_f64, double)
HOST_SUMMARY(gpusim_host_summary_f32, float)

// Philox words for the known-answer tests.
void gpusim_host_philox(const unsigned* counter, const unsigned* key, unsigned* out) {
  Words w = philox4x32(counter[0], counter[1], counter[2], counter[3], key[0], key[1]);
  for (int k = 0; k < 4; ++k) out[k] = w.w[k];
}

// Box-Muller normals of n uniform pairs u[2i], u[2i + 1] into z[2i], z[2i + 1] (for the
// tests of gsmath.cuh's log and sin/cos).
void gpusim_host_box_muller(const double* u, long long n, double* z) {
  for (long long i = 0; i < n; ++i) box_muller(u[2 * i], u[2 * i + 1], &z[2 * i], &z[2 * i + 1]);
}

// One value's sketch bucket (for the bucketing tests).
int gpusim_host_sketch_bucket(GPUSIM_SKETCH_PARAMS, double x) {
  return sketch_bucket(GPUSIM_SKETCH_LAYOUT, x);
}
}
