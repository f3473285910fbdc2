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

// For a rarely taken path that the host compiler should keep out of line (the hot loop
// stays small); inlined like the rest on the device.
#if defined(__CUDACC__) || !defined(__GNUC__)
#define GPUSIM_COLD GPUSIM_HD
#else
#define GPUSIM_COLD inline __attribute__((noinline, cold))
#endif

// Unroll the next loop fully (a short loop of constant trip count on the hot path, e.g.
// Philox's ten rounds: unrolled, the round keys and the state rename into registers).
#if defined(__CUDACC__) || defined(__clang__)
#define GS_UNROLL_FULL _Pragma("unroll")
#elif defined(__GNUC__)
#define GS_UNROLL_FULL _Pragma("GCC unroll 16")
#else
#define GS_UNROLL_FULL
#endif

typedef unsigned int u32;
typedef unsigned long long u64;

template <typename T> GPUSIM_HD T gs_min(T a, T b) { return a < b ? a : b; }
template <typename T> GPUSIM_HD T gs_max(T a, T b) { return a > b ? a : b; }
template <typename T> GPUSIM_HD T gs_clip(T x, T lo, T hi) { return gs_min(gs_max(x, lo), hi); }
