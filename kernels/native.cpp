// The native CPU backend: the kernel's headers built for the host at install time (setup.py)
// and run over a block's paths on every core with OpenMP. Each path is simulate_path,
// exactly as the CUDA kernel and host.cpp run it, so thread count, scheduling and block
// size change no bit of the output: cube paths write disjoint addresses, and summary counts
// are integer sums (one dense set per thread, merged after the loop).
// Entry points take gpusim.cu's parameter lists (engine.cuh) followed by `int threads`
// (<= 0: OpenMP's default, which follows OMP_NUM_THREADS and the affinity mask); the
// summary entry points return 0, or 1 when memory for the threads' counts ran out.
//   built by setup.py: -O3 -std=c++14 -ffp-contract=off -fopenmp [-march=x86-64-v2]
#include <stdlib.h>
#include <string.h>

#include "engine.cuh"

#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef GPUSIM_NATIVE_DIGEST
#define GPUSIM_NATIVE_DIGEST "unknown"
#endif
#ifndef GPUSIM_NATIVE_ISA
#define GPUSIM_NATIVE_ISA "default"
#endif

namespace {

const long long CHUNK = 16;  // paths a thread takes at a time (dynamic schedule)

int team_size(int threads) {
#ifdef _OPENMP
  return threads > 0 ? threads : omp_get_max_threads();
#else
  (void)threads;
  return 1;
#endif
}

int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// The summary kernel's count buffers, one set: (pointer, length) of each.
struct Counts {
  unsigned* buf[6];
  long long len[6];
};

template <typename R> Counts counts_of(const SummaryOut<R>& o, int months, int n_firms,
                                       int n_facilities) {
  const long long b = o.sketch.buckets;
  Counts c = {{o.market, o.firm, o.facility, o.bust, o.ltv_breach, o.nonfinite},
              {(long long)MO_COUNT * months * b, (long long)FO_COUNT * months * n_firms * b,
               (long long)AO_COUNT * months * n_facilities * b, months,
               (long long)months * n_firms, 1}};
  return c;
}

// The counts of a thread other than the first: zeroed buffers of the same lengths (calloc:
// pages are touched only where that thread counts). False if memory ran out.
bool alloc_counts(const Counts& c, unsigned** mine) {
  bool ok = true;
  for (int k = 0; k < 6; ++k) {
    mine[k] = (unsigned*)calloc((size_t)(c.len[k] > 0 ? c.len[k] : 1), sizeof(unsigned));
    ok = ok && mine[k];
  }
  return ok;
}

template <typename R> SummaryOut<R> with_counts(SummaryOut<R> o, unsigned* const* mine) {
  o.market = mine[0], o.firm = mine[1], o.facility = mine[2];
  o.bust = mine[3], o.ltv_breach = mine[4], o.nonfinite = mine[5];
  return o;
}

// counts += each extra thread's counts, split over the team by index.
void merge(const Counts& c, unsigned** extra, int n_extra, int threads) {
  for (int k = 0; k < 6; ++k) {
    unsigned* dst = c.buf[k];
    const long long len = c.len[k];
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long long x = 0; x < len; ++x) {
      unsigned sum = dst[x];
      for (int e = 0; e < n_extra; ++e) sum += extra[e * 6 + k][x];
      dst[x] = sum;
    }
  }
}

// Thread 0 counts straight into the caller's buffers, thread t > 0 into its own set; the
// sets are added after the loop.
template <typename R> int run_summary(const Inputs& in, u64 seed, long long path0,
                                      const SummaryOut<R>& o, int threads) {
  const int team = team_size(threads);
  const long long n = o.n;
  const Counts c = counts_of(o, in.months, in.firms.n_firms, in.firms.n_facilities);
  unsigned** extra = (unsigned**)calloc((size_t)team * 6, sizeof(unsigned*));
  bool ok = extra != nullptr;
  for (int e = 0; ok && e < team - 1; ++e) ok = alloc_counts(c, extra + e * 6);
  if (ok) {
#pragma omp parallel num_threads(team)
    {
      const int id = thread_id();
      const SummaryOut<R> mine = id == 0 ? o : with_counts(o, extra + (id - 1) * 6);
#pragma omp for schedule(dynamic, CHUNK)
      for (long long i = 0; i < n; ++i) simulate_path(in, seed, (u64)(path0 + i), i, mine);
    }
    merge(c, extra, team - 1, team);
  }
  for (int e = 0; extra && e < (team - 1) * 6; ++e) free(extra[e]);
  free(extra);
  return ok ? 0 : 1;  // 1: out of memory (nothing counted)
}

template <typename R> void run_cube(const Inputs& in, u64 seed, long long path0,
                                    const CubeOut<R>& o, int threads) {
  const long long n = o.n;
#pragma omp parallel for num_threads(team_size(threads)) schedule(dynamic, CHUNK)
  for (long long i = 0; i < n; ++i) simulate_path(in, seed, (u64)(path0 + i), i, o);
}

}  // namespace

#define NATIVE_CUBE(NAME, R)                                                                 \
  void NAME(GPUSIM_CUBE_PARAMS(R), int threads) {                                            \
    run_cube<R>(GPUSIM_INPUTS, seed, path0, GPUSIM_CUBE_OUT(R), threads);                    \
  }

#define NATIVE_SUMMARY(NAME, R)                                                              \
  int NAME(GPUSIM_SUMMARY_PARAMS(R), int threads) {                                          \
    return run_summary<R>(GPUSIM_INPUTS, seed, path0, GPUSIM_SUMMARY_OUT(R), threads);              \
  }

extern "C" {

NATIVE_CUBE(gpusim_native_cube_f64, double)
NATIVE_CUBE(gpusim_native_cube_f32, float)
NATIVE_SUMMARY(gpusim_native_summary_f64, double)
NATIVE_SUMMARY(gpusim_native_summary_f32, float)

// The digest of the kernel sources this library was built from (header.sources_digest).
const char* gpusim_native_digest(void) { return GPUSIM_NATIVE_DIGEST; }

// The instruction set the build targets (-march), for provenance.
const char* gpusim_native_isa(void) { return GPUSIM_NATIVE_ISA; }

// OpenMP's default team size here (1 without OpenMP).
int gpusim_native_max_threads(void) { return team_size(0); }

// 1 if built with OpenMP.
int gpusim_native_openmp(void) {
#ifdef _OPENMP
  return 1;
#else
  return 0;
#endif
}
}
