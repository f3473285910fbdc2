// The native CPU backend: the kernel's headers built for the host at install time (setup.py)
// and run over a block's paths on every core with OpenMP. Each path is simulate_path,
// exactly as the CUDA kernel and host.cpp run it, so thread count, scheduling and block
// size change no bit of the output: cube paths write disjoint addresses, and summary counts
// are integer sums (one dense set per thread, merged after the loop).
// A thread takes TILE paths at a time and runs them into a small cube of its own (cache-
// resident), then hands every value of it to engine.cuh's emit_* functions of the real
// output, row by row: the same calls simulate_path would make, made in an order where the
// cube's rows are written TILE paths at a time and a sketch row is counted TILE times in a
// row (one path at a time touches a different page for every value).
// Entry points take gpusim.cu's parameter lists (engine.cuh) followed by `int threads`
// (<= 0: OpenMP's default, which follows OMP_NUM_THREADS and the affinity mask), and the
// summary entry points then `unsigned** scratch, int sets` (run_summary); the cube entry
// points return the number of NaN and Inf values they wrote, the summary entry points 0,
// or 1 when memory for the threads' counts ran out.
//   built by setup.py: -O3 -std=c++14 -ffp-contract=off -fopenmp [-march=x86-64-v2]
#include <stdlib.h>
#include <string.h>

#include <vector>

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

const long long TILE = 32;  // paths a thread takes at a time (dynamic schedule)

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

// A thread's own cube for up to TILE paths (CubeOut with n = the tile's paths).
template <typename R> struct Tile {
  std::vector<R> market, firm, facility, flows, loss_total, exposure_at_default;
  std::vector<int> default_month;
  Tile(const Inputs& in, bool with_flows)
      : market((size_t)(MO_COUNT * in.months * TILE)),
        firm((size_t)(FO_COUNT * in.months * in.firms.n_firms * TILE)),
        facility((size_t)(AO_COUNT * in.months * in.firms.n_facilities * TILE)),
        flows(with_flows ? (size_t)(FL_COUNT * in.months * in.firms.n_firms * TILE) : 0),
        loss_total((size_t)(in.firms.n_facilities * TILE)),
        exposure_at_default((size_t)(in.firms.n_facilities * TILE)),
        default_month((size_t)(in.firms.n_firms * TILE)) {}
  CubeOut<R> out(long long m) {
    return CubeOut<R>{market.data(), firm.data(), facility.data(), default_month.data(),
                      loss_total.data(), exposure_at_default.data(),
                      flows.empty() ? nullptr : flows.data(), m};
  }
};

// The market shocks of a tile's paths, drawn before the paths run (market_draws, many
// paths at a time: the loop over paths vectorizes; each path's draws are the same
// arithmetic as one at a time, so the same bits). Month t's eps[s] (s < 6) and uni[s - 6]
// of the tile's path k are at shocks[(t * SHOCKS + s) * TILE + k].
const int SHOCKS = 8;

struct TileShocks {
  const double* shocks;
  void operator()(u64, u64, long long k, int t, double eps[6], double uni[2]) const {
    const double* at = shocks + (size_t)t * SHOCKS * TILE + k;
    for (int s = 0; s < 6; ++s) eps[s] = at[s * TILE];
    uni[0] = at[6 * TILE];
    uni[1] = at[7 * TILE];
  }
};

// Draw the shocks of paths path .. path + m - 1 (m <= TILE), months 0 .. months - 2 (the
// last month advances nothing). Everything it calls is inlined (flatten), so that the loop
// over paths vectorizes whole: 2 paths a vector in the portable build.
GPUSIM_HOT void draw_tile_body(u64 seed, u64 path, long long m, int months, double* shocks) {
  for (int t = 0; t + 1 < months; ++t) {
    double* at = shocks + (size_t)t * SHOCKS * TILE;
    for (long long k = 0; k < m; ++k) {
      double eps[6], uni[2];
      market_draws(seed, path + (u64)k, (u32)t, eps, uni);
      for (int s = 0; s < 6; ++s) at[s * TILE + k] = eps[s];
      at[6 * TILE + k] = uni[0];
      at[7 * TILE + k] = uni[1];
    }
  }
}

__attribute__((flatten)) void draw_tile_portable(u64 seed, u64 path, long long m, int months,
                                                 double* shocks) {
  draw_tile_body(seed, path, m, months, shocks);
}

// The same loop compiled for AVX2 as well (4 paths a vector), used where the CPU has it,
// so the library stays portable (x86-64-v2) and still uses a newer CPU's vectors where
// most of a tile's arithmetic is. No FMA (not enabled by target("avx2"), and
// -ffp-contract=off): the same IEEE operations lane by lane, so the same bits
// (tests/test_native.py compares the two).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define GPUSIM_AVX2_DRAWS 1
__attribute__((flatten, target("avx2"))) void draw_tile_avx2(u64 seed, u64 path, long long m,
                                                             int months, double* shocks) {
  draw_tile_body(seed, path, m, months, shocks);
}
#endif

// 1 if draw_tile uses the AVX2 loop: -1 until first asked, then the CPU's answer unless the
// host set it (gpusim_native_avx2).
int avx2_draws = -1;

int avx2_supported() {
#ifdef GPUSIM_AVX2_DRAWS
  return __builtin_cpu_supports("avx2") ? 1 : 0;
#else
  return 0;
#endif
}

void draw_tile(u64 seed, u64 path, long long m, int months, double* shocks) {
#ifdef GPUSIM_AVX2_DRAWS
  if (avx2_draws > 0) {
    draw_tile_avx2(seed, path, m, months, shocks);
    return;
  }
#endif
  draw_tile_portable(seed, path, m, months, shocks);
}

// Before a block's parallel region: the CPU's answer, unless the host already set one.
void settle_draws() {
  if (avx2_draws < 0) avx2_draws = avx2_supported();
}

template <typename R> bool has_flows(const CubeOut<R>& o) { return o.flows != nullptr; }
template <typename R> bool has_flows(const SummaryOut<R>&) { return false; }

// Every value of a tile of m paths (block indices i0 ..) through the emit_* functions of o.
template <typename R, template <typename> class Out>
void drain(const Tile<R>& tile, long long m, const Inputs& in, const Out<R>& o,
           long long i0) {
  const int months = in.months, nf = in.firms.n_firms, na = in.firms.n_facilities;
  for (int v = 0; v < MO_COUNT; ++v)
    for (int t = 0; t < months; ++t) {
      const R* row = &tile.market[((size_t)v * months + t) * m];
      for (long long k = 0; k < m; ++k) emit_market(o, months, v, t, i0 + k, row[k]);
    }
  for (int v = 0; v < FO_COUNT; ++v)
    for (int t = 0; t < months; ++t)
      for (int f = 0; f < nf; ++f) {
        const R* row = &tile.firm[(((size_t)v * months + t) * nf + f) * m];
        for (long long k = 0; k < m; ++k) emit_firm(o, months, nf, v, t, f, i0 + k, row[k]);
      }
  for (int v = 0; v < AO_COUNT; ++v)
    for (int t = 0; t < months; ++t)
      for (int j = 0; j < na; ++j) {
        const R* row = &tile.facility[(((size_t)v * months + t) * na + j) * m];
        for (long long k = 0; k < m; ++k)
          emit_facility(o, months, na, v, t, j, i0 + k, row[k]);
      }
  for (int t = 0; !tile.flows.empty() && t < months; ++t)
    for (int f = 0; f < nf; ++f)
      for (long long k = 0; k < m; ++k) {
        R terms[FL_COUNT];
        for (int v = 0; v < FL_COUNT; ++v)
          terms[v] = tile.flows[(((size_t)v * months + t) * nf + f) * m + k];
        emit_flows(o, months, nf, t, f, i0 + k, terms);
      }
  for (int f = 0; f < nf; ++f)
    for (long long k = 0; k < m; ++k)
      o.default_month[(long long)f * o.n + i0 + k] = tile.default_month[(size_t)f * m + k];
  for (int j = 0; j < na; ++j)
    for (long long k = 0; k < m; ++k)
      o.loss_total[(long long)j * o.n + i0 + k] = tile.loss_total[(size_t)j * m + k];
  for (int j = 0; j < na; ++j)
    for (long long k = 0; k < m; ++k)
      o.exposure_at_default[(long long)j * o.n + i0 + k] =
          tile.exposure_at_default[(size_t)j * m + k];
}

// NaN and Inf values among the first `len` of `x` (x - x is 0 exactly when x is finite).
template <typename R> long long nonfinite_in(const std::vector<R>& x, size_t len) {
  long long bad = 0;
  for (size_t k = 0; k < len; ++k) bad += !(x[k] - x[k] == (R)0);
  return bad;
}

// NaN and Inf values of a tile of m paths, every float output of the cube (the summary
// kernel counts them as it buckets: SummaryOut::nonfinite). Scanned while the tile is in
// cache, so the host need not scan the whole cube again after the call.
template <typename R>
long long nonfinite_in(const Tile<R>& tile, long long m, const Inputs& in) {
  const size_t per = (size_t)m * in.months, nf = in.firms.n_firms, na = in.firms.n_facilities;
  return nonfinite_in(tile.market, MO_COUNT * per)
         + nonfinite_in(tile.firm, FO_COUNT * per * nf)
         + nonfinite_in(tile.facility, AO_COUNT * per * na)
         + (tile.flows.empty() ? 0 : nonfinite_in(tile.flows, FL_COUNT * per * nf))
         + nonfinite_in(tile.loss_total, (size_t)m * na)
         + nonfinite_in(tile.exposure_at_default, (size_t)m * na);
}
template <typename R>
long long nonfinite_in(const Tile<R>&, long long, const Inputs&, const SummaryOut<R>&) {
  return 0;  // the summary outputs count them as they bucket
}
template <typename R>
long long nonfinite_in(const Tile<R>& tile, long long m, const Inputs& in, const CubeOut<R>&) {
  return nonfinite_in(tile, m, in);
}

// This thread's share of the block's paths, a tile at a time (inside a parallel region);
// returns the NaN and Inf values of the cube it wrote (0 in summary mode).
template <typename R, template <typename> class Out>
long long run_tiles(const Inputs& in, u64 seed, long long path0, const Out<R>& o) {
  Tile<R> tile(in, has_flows(o));
  std::vector<double> shocks((size_t)in.months * SHOCKS * TILE);
  const TileShocks drawn = {shocks.data()};
  const long long tiles = (o.n + TILE - 1) / TILE;
  long long bad = 0;
#pragma omp for schedule(dynamic, 1) nowait
  for (long long b = 0; b < tiles; ++b) {
    const long long i0 = b * TILE, m = gs_min(TILE, o.n - i0);
    const CubeOut<R> local = tile.out(m);
    draw_tile(seed, (u64)(path0 + i0), m, in.months, shocks.data());
    for (long long k = 0; k < m; ++k)
      simulate_path(in, seed, (u64)(path0 + i0 + k), k, local, drawn);
    bad += nonfinite_in(tile, m, in, o);
    drain(tile, m, in, o, i0);
  }
  return bad;
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
// pages are touched only where that thread counts). False if memory ran out. Used when the
// caller passes no scratch sets of its own (run_summary).
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

// counts += each extra thread's counts, split over the team by index; with `rezero` the
// extra counts are left at 0 again (in the same pass), ready for the next block.
void merge(const Counts& c, unsigned** extra, int n_extra, int threads, bool rezero) {
  for (int k = 0; n_extra > 0 && k < 6; ++k) {
    unsigned* dst = c.buf[k];
    const long long len = c.len[k];
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long long x = 0; x < len; ++x) {
      unsigned sum = dst[x];
      for (int e = 0; e < n_extra; ++e) {
        sum += extra[e * 6 + k][x];
        if (rezero) extra[e * 6 + k][x] = 0;
      }
      dst[x] = sum;
    }
  }
}

// Thread 0 counts straight into the caller's buffers, thread t > 0 into its own set; the
// sets are added after the loop. `scratch`: nullptr, or `sets` zeroed sets of the six count
// buffers (counts_of's order and lengths) for the threads after the first; they are zeroed
// again by the merge, so a caller can pass the same sets block after block instead of
// fresh memory (whose every page the kernel faults in and zeroes: ~100 MB a block of the
// base config, for each thread). Fewer sets than the team needs: fresh memory, as without.
template <typename R> int run_summary(const Inputs& in, u64 seed, long long path0,
                                      const SummaryOut<R>& o, int threads,
                                      unsigned** scratch, int sets) {
  settle_draws();
  const int team = team_size(threads);
  const Counts c = counts_of(o, in.months, in.firms.n_firms, in.firms.n_facilities);
  const bool reuse = scratch != nullptr && sets >= team - 1;
  unsigned** extra = reuse ? scratch : (unsigned**)calloc((size_t)team * 6, sizeof(unsigned*));
  bool ok = extra != nullptr;
  for (int e = 0; ok && !reuse && e < team - 1; ++e) ok = alloc_counts(c, extra + e * 6);
  if (ok) {
#pragma omp parallel num_threads(team)
    {
      const int id = thread_id();
      const SummaryOut<R> mine = id == 0 ? o : with_counts(o, extra + (id - 1) * 6);
      run_tiles(in, seed, path0, mine);
    }
    merge(c, extra, team - 1, team, reuse);
  }
  if (!reuse) {
    for (int e = 0; extra && e < (team - 1) * 6; ++e) free(extra[e]);
    free(extra);
  }
  return ok ? 0 : 1;  // 1: out of memory (nothing counted)
}

// The cube of the block; returns its NaN and Inf values (the host then finds and names
// the first).
template <typename R> long long run_cube(const Inputs& in, u64 seed, long long path0,
                                         const CubeOut<R>& o, int threads) {
  settle_draws();
  long long bad = 0;
#pragma omp parallel num_threads(team_size(threads)) reduction(+ : bad)
  bad += run_tiles(in, seed, path0, o);
  return bad;
}

// The first entry of the part'th of `parts` equal parts of 0 .. n.
inline long long part_start(long long n, int part, int parts) { return n * part / parts; }

// How many of counts[0 .. n) are nonzero, counted by `parts` threads, each its own equal
// part: offset[p] (parts + 1 entries) is where part p's entries go in take_nonzero's
// output, offset[parts] the total.
long long count_nonzero(const unsigned* counts, long long n, int parts, long long* offset) {
  offset[0] = 0;
#pragma omp parallel for num_threads(parts) schedule(static)
  for (int p = 0; p < parts; ++p) {
    long long found = 0;
    for (long long x = part_start(n, p, parts); x < part_start(n, p + 1, parts); ++x)
      found += counts[x] != 0;
    offset[p + 1] = found;
  }
  for (int p = 0; p < parts; ++p) offset[p + 1] += offset[p];
  return offset[parts];
}

// The nonzero entries of counts[0 .. n), their indices and values in index order, into
// index[] and values[] (offset[parts] entries each), every entry zeroed as it is taken;
// each of `parts` threads takes its own part, at the offset count_nonzero gave it.
void take_nonzero(unsigned* counts, long long n, int parts, const long long* offset,
                  long long* index, long long* values) {
#pragma omp parallel for num_threads(parts) schedule(static)
  for (int p = 0; p < parts; ++p) {
    long long at = offset[p];
    for (long long x = part_start(n, p, parts); x < part_start(n, p + 1, parts); ++x)
      if (counts[x] != 0) {
        index[at] = x;
        values[at++] = counts[x];
        counts[x] = 0;
      }
  }
}

}  // namespace

#define NATIVE_CUBE(NAME, R)                                                                 \
  long long NAME(GPUSIM_CUBE_PARAMS(R), int threads) {                                       \
    return run_cube<R>(GPUSIM_INPUTS, seed, path0, GPUSIM_CUBE_OUT(R), threads);             \
  }

#define NATIVE_SUMMARY(NAME, R)                                                              \
  int NAME(GPUSIM_SUMMARY_PARAMS(R), int threads, unsigned** scratch, int sets) {            \
    return run_summary<R>(GPUSIM_INPUTS, seed, path0, GPUSIM_SUMMARY_OUT(R), threads, scratch, \
                          sets);                                                             \
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

// Whether the shocks are drawn with the AVX2 loop: `use` 0 turns it off, 1 on where the
// CPU has AVX2, < 0 leaves it; returns the setting now (1 on, 0 off).
int gpusim_native_avx2(int use) {
  if (use >= 0 || avx2_draws < 0) avx2_draws = use == 0 ? 0 : avx2_supported();
  return avx2_draws;
}

// OpenMP's default team size here (1 without OpenMP).
int gpusim_native_max_threads(void) { return team_size(0); }

// A summary's sparse counts, taken out of its dense count buffers (which are left zeroed,
// ready for the next block) by `parts` >= 1 threads: count_nonzero sizes the arrays and
// splits the work (offset: parts + 1 entries), take_nonzero fills them with the indices
// and values of the nonzero entries in index order (numpy's flatnonzero and the values
// there).
long long gpusim_native_count_nonzero(const unsigned* counts, long long n, int parts,
                                      long long* offset) {
  return count_nonzero(counts, n, parts, offset);
}
void gpusim_native_take_nonzero(unsigned* counts, long long n, int parts,
                                const long long* offset, long long* index, long long* values) {
  take_nonzero(counts, n, parts, offset, index, values);
}

// 1 if built with OpenMP.
int gpusim_native_openmp(void) {
#ifdef _OPENMP
  return 1;
#else
  return 0;
#endif
}
}
