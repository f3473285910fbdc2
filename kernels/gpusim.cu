// The fused kernels: one thread per path, months in a loop, state in registers (spilling
// to local memory for the firms' arrays), market and firms coupled inside the path.
// simulate_cube_* write every output of the block; simulate_summary_* count the monthly
// outputs into quantile sketches on the device and write only the per-path results.
// Loaded by gpusim/backends/cuda.py with cupy.RawModule; compiled to PTX in CI.
#include "engine.cuh"

// Launch bounds (cuda.py's block size and the benchmark sweep): at most GPUSIM_THREADS
// threads per block, and registers capped so GPUSIM_MIN_BLOCKS blocks fit on one SM.
#ifdef GPUSIM_MIN_BLOCKS
#define GPUSIM_BOUNDS __launch_bounds__(GPUSIM_THREADS, GPUSIM_MIN_BLOCKS)
#elif defined(GPUSIM_THREADS)
#define GPUSIM_BOUNDS __launch_bounds__(GPUSIM_THREADS)
#else
#define GPUSIM_BOUNDS
#endif

#define CUBE_KERNEL(NAME, R)                                                                 \
  extern "C" __global__ GPUSIM_BOUNDS void NAME(GPUSIM_CUBE_PARAMS(R)) {                                   \
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;                          \
    if (i >= n) return;                                                                      \
    simulate_path(GPUSIM_INPUTS, seed, (u64)(path0 + i), i, GPUSIM_CUBE_OUT(R));             \
  }

#define SUMMARY_KERNEL(NAME, R)                                                              \
  extern "C" __global__ GPUSIM_BOUNDS void NAME(GPUSIM_SUMMARY_PARAMS(R)) {                                \
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;                          \
    if (i >= n) return;                                                                      \
    simulate_path(GPUSIM_INPUTS, seed, (u64)(path0 + i), i, GPUSIM_SUMMARY_OUT(R));          \
  }

// A run compiles only the kernel it launches: cuda.py defines GPUSIM_ONLY and
// GPUSIM_ONLY_<kernel> (with the run's shape, shapes.cuh); without them, all four.
#if !defined(GPUSIM_ONLY) || defined(GPUSIM_ONLY_simulate_cube_f64)
CUBE_KERNEL(simulate_cube_f64, double)
#endif
#if !defined(GPUSIM_ONLY) || defined(GPUSIM_ONLY_simulate_cube_f32)
CUBE_KERNEL(simulate_cube_f32, float)
#endif
#if !defined(GPUSIM_ONLY) || defined(GPUSIM_ONLY_simulate_summary_f64)
SUMMARY_KERNEL(simulate_summary_f64, double)
#endif
#if !defined(GPUSIM_ONLY) || defined(GPUSIM_ONLY_simulate_summary_f32)
SUMMARY_KERNEL(simulate_summary_f32, float)
#endif
