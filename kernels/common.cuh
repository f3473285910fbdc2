// Shared definitions for code that compiles both as CUDA device code and as host C++.
#pragma once

#ifdef __CUDACC__
#define GPUSIM_HD __host__ __device__ __forceinline__
#else
#include <math.h>
#include <stdint.h>
#define GPUSIM_HD inline
#endif

// For the few small functions of the hot path that the host compiler would otherwise call
// rather than inline (on the device every GPUSIM_HD function is inlined already).
#if defined(__CUDACC__) || !defined(__GNUC__)
#define GPUSIM_HOT GPUSIM_HD
#else
#define GPUSIM_HOT inline __attribute__((always_inline))
#endif

typedef unsigned int u32;
typedef unsigned long long u64;

template <typename T> GPUSIM_HD T gs_min(T a, T b) { return a < b ? a : b; }
template <typename T> GPUSIM_HD T gs_max(T a, T b) { return a > b ? a : b; }
template <typename T> GPUSIM_HD T gs_clip(T x, T lo, T hi) { return gs_min(gs_max(x, lo), hi); }
