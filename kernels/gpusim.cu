// The fused kernels: one thread per path, months in a loop, state in registers (spilling
// to local memory for the firms' arrays), market and firms coupled inside the path.
// simulate_cube_* write every output of the block; simulate_summary_* count the monthly
// outputs into quantile sketches on the device and write only the per-path results.
// Loaded by gpusim/backends/cuda.py with cupy.RawModule; compiled to PTX in CI.
#include "engine.cuh"

#define CUBE_KERNEL(NAME, R)                                                                 \
  extern "C" __global__ void NAME(GPUSIM_INPUT_PARAMS, R* market, R* firm, R* facility,      \
                                  int* default_month, R* loss_total, R* flows) {             \
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;                          \
    if (i >= n) return;                                                                      \
    CubeOut<R> out = {market, firm, facility, default_month, loss_total, flows, n};          \
    simulate_path(GPUSIM_INPUTS, seed, (u64)(path0 + i), i, out);                            \
  }

#define SUMMARY_KERNEL(NAME, R)                                                              \
  extern "C" __global__ void NAME(GPUSIM_INPUT_PARAMS, unsigned* market, unsigned* firm,     \
                                  unsigned* facility, unsigned* bust, unsigned* ltv_breach,  \
                                  unsigned* nonfinite, int* default_month, R* loss_total,    \
                                  double min_magnitude, double log_gamma, int key_min,       \
                                  int key_max, int buckets) {                                \
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;                          \
    if (i >= n) return;                                                                      \
    SummaryOut<R> out = {market,        firm,       facility, bust, ltv_breach, nonfinite,   \
                         default_month, loss_total, n,                                       \
                         {min_magnitude, log_gamma, key_min, key_max, buckets}};             \
    simulate_path(GPUSIM_INPUTS, seed, (u64)(path0 + i), i, out);                            \
  }

CUBE_KERNEL(simulate_cube_f64, double)
CUBE_KERNEL(simulate_cube_f32, float)
SUMMARY_KERNEL(simulate_summary_f64, double)
SUMMARY_KERNEL(simulate_summary_f32, float)
