// One whole path, months in a loop, state in registers: the fused model that both the
// CUDA kernel (gpusim.cu) and the host test library (host.cpp) run. It mirrors
// gpusim/engine.py: record the market of month t, step the firms, then advance the market
// with month t's shocks and the GPUs the firms fire-sold.
#pragma once
#include "common.cuh"
#include "firms.cuh"
#include "market.cuh"
#include "params.cuh"
#include "philox.cuh"
#include "shapes.cuh"
#include "sketch.cuh"

struct Inputs {
  const double* __restrict__ mp;       // MP_COUNT market scalars (the kernel's by-value MarketScalars)
  const double* __restrict__ monthly;  // MM_COUNT x months
  FirmInputs firms;
  int months;
};

// Where a path's outputs go. The kernel is written once against the emit_* functions
// below; each output kind (a cube block, or summary-mode counts) overloads them.

// Cube: (variable, month, [entity,] path) with the path fastest, so neighbouring threads
// write neighbouring addresses. Offsets are 64-bit.
template <typename R> struct CubeOut {
  R* __restrict__ market;            // MO_COUNT x months x n
  R* __restrict__ firm;              // FO_COUNT x months x n_firms x n
  R* __restrict__ facility;          // AO_COUNT x months x n_facilities x n
  int* __restrict__ default_month;   // n_firms x n
  R* __restrict__ loss_total;        // n_facilities x n
  R* __restrict__ exposure_at_default;  // n_facilities x n
  R* __restrict__ flows;             // FL_COUNT x months x n_firms x n, or null
  long long n;
};

// Summary: every monthly value is counted in its sketch bucket (sketch.cuh), the 0/1
// variables are counted where 1, and only the per-path results are written. Counts are
// per block (32-bit: a block has fewer than 2^31 paths); the host merges blocks.
template <typename R> struct SummaryOut {
  unsigned* __restrict__ market;      // MO_COUNT x months x buckets (the regime's rows stay 0)
  unsigned* __restrict__ firm;        // FO_COUNT x months x n_firms x buckets (the flags' rows stay 0)
  unsigned* __restrict__ facility;    // AO_COUNT x months x n_facilities x buckets
  unsigned* __restrict__ bust;        // months: paths in the bust regime
  unsigned* __restrict__ ltv_breach;  // months x n_firms: paths with an LTV breach
  unsigned* __restrict__ nonfinite;   // 1: NaN or Inf values met (an error the host reports)
  int* __restrict__ default_month;    // n_firms x n
  R* __restrict__ loss_total;         // n_facilities x n
  R* __restrict__ exposure_at_default;  // n_facilities x n
  long long n;
  SketchLayout sketch;
  bool by_table;  // sketch_table_applies(sketch): bucket by the edge table
};

template <typename R>
GPUSIM_HD void put_entity(R* base, int months, int entities, int v, int t, int e, long long n,
                          long long i, R x) {
  base[(((long long)v * months + t) * entities + e) * n + i] = x;
}

template <typename R>
GPUSIM_HD void emit_market(const CubeOut<R>& o, int months, int v, int t, long long i, R x) {
  o.market[((long long)v * months + t) * o.n + i] = x;
}

template <typename R>
GPUSIM_HD void emit_firm(const CubeOut<R>& o, int months, int n_firms, int v, int t, int f,
                         long long i, R x) {
  put_entity(o.firm, months, n_firms, v, t, f, o.n, i, x);
}

template <typename R>
GPUSIM_HD void emit_facility(const CubeOut<R>& o, int months, int n_facilities, int v, int t,
                             int j, long long i, R x) {
  put_entity(o.facility, months, n_facilities, v, t, j, o.n, i, x);
}

template <typename R>
GPUSIM_HD void emit_flows(const CubeOut<R>& o, int months, int n_firms, int t, int f,
                          long long i, const R* flows) {
  if (o.flows)
    GS_UNROLL for (int v = 0; v < FL_COUNT; ++v)
      put_entity(o.flows, months, n_firms, v, t, f, o.n, i, flows[v]);
}

// Count x in sketch `series` (its row of `counts`); a NaN or Inf is also counted apart.
template <typename R>
GPUSIM_HOT void count_value(const SummaryOut<R>& o, unsigned* counts, long long series, R x) {
  if (o.by_table) {  // the layout of sketch_edges.cuh: its bucket count is a constant
    bool nonfinite;
    const int bucket = sketch_bucket_by_table((double)x, &nonfinite);
    count_one(counts, series * (2 * GS_SKETCH_SIDE + 1) + bucket);
    if (nonfinite) count_one(o.nonfinite, 0);
  } else {
    if (!(x - x == (R)0)) count_one(o.nonfinite, 0);
    count_one(counts, series * o.sketch.buckets + sketch_bucket_by_log(o.sketch, (double)x));
  }
}

template <typename R>
GPUSIM_HD void emit_market(const SummaryOut<R>& o, int months, int v, int t, long long, R x) {
  if (v == MO_REGIME) {
    if (x == (R)1) count_one(o.bust, t);
  } else {
    count_value(o, o.market, (long long)v * months + t, x);
  }
}

template <typename R>
GPUSIM_HD void emit_firm(const SummaryOut<R>& o, int months, int n_firms, int v, int t, int f,
                         long long, R x) {
  if (v == FO_LTV_BREACH) {
    if (x != (R)0) count_one(o.ltv_breach, (long long)t * n_firms + f);
  } else if (v != FO_DEFAULTED) {  // default curves come from the exact default months
    count_value(o, o.firm, ((long long)v * months + t) * n_firms + f, x);
  }
}

template <typename R>
GPUSIM_HD void emit_facility(const SummaryOut<R>& o, int months, int n_facilities, int v,
                             int t, int j, long long, R x) {
  count_value(o, o.facility, ((long long)v * months + t) * n_facilities + j, x);
}

template <typename R>
GPUSIM_HD void emit_flows(const SummaryOut<R>&, int, int, int, int, long long, const R*) {}

// Where simulate_path takes month t's market shocks (market_draws' eps and uniforms) from:
// by default drawn there and then, as the GPU's thread per path does; the native CPU build
// passes its own, drawn beforehand for many paths at once by the same market_draws.
struct DrawMarket {
  GPUSIM_HD void operator()(u64 seed, u64 path, long long, int t, double eps[6],
                            double uni[2]) const {
    market_draws(seed, path, (u32)t, eps, uni);
  }
};

// Simulate path `path` (its index i within the block) and write its cube.
template <typename R, template <typename> class Out, typename Draws = DrawMarket>
GPUSIM_HD void simulate_path(const Inputs& in, u64 seed, u64 path, long long i,
                             const Out<R>& o, const Draws& draws = Draws()) {
  const int months = in.months;
  const double* mp = in.mp;
  const FirmInputs& fi = in.firms;
  MarketState<R> s;
  market_init(s, mp);
  FirmsState<R> fs;
  firms_init(fs, fi);
  for (int t = 0; t < months; ++t) {
    R h = gpu_hour_demand(s, mp, in.monthly + MM_TRAINING * months, t);
    R u = utilization(h, s, mp);
    MarketNow<R> now;
    now.price = (R)exp(s.ln_p);
    now.utilization = u;
    now.collateral = (R)exp(s.ln_v);
    now.sofr = gs_max(s.x_r, (R)0);
    now.spread = (R)exp(s.ln_s);
    now.regime = s.regime;
    now.hours = mp[MP_HOURS];
    emit_market(o, months, MO_TOKEN_DEMAND, t, i, (R)exp(s.ln_d));
    emit_market(o, months, MO_GPU_HOUR_DEMAND, t, i, h);
    emit_market(o, months, MO_CAPACITY, t, i, s.k);
    emit_market(o, months, MO_UTILIZATION, t, i, u);
    emit_market(o, months, MO_RENTAL_PRICE, t, i, now.price);
    emit_market(o, months, MO_COLLATERAL_VALUE, t, i, now.collateral);
    emit_market(o, months, MO_SOFR, t, i, now.sofr);
    emit_market(o, months, MO_CREDIT_SPREAD, t, i, now.spread);
    emit_market(o, months, MO_REGIME, t, i, (R)s.regime);

    R seized = (R)0;
    u32 words[2 * GS_CONTRACTS_CAP];  // each contract stream's block, drawn once this month
    contract_words<GS_CONTRACTS_CAP>(seed, path, (u32)t, GS_N_CONTRACTS(fi), words);
    GS_UNROLL for (int f = 0; f < GS_N_FIRMS(fi); ++f) {
      const int c0 = GS_FIRM_CONTRACT0(fi, f), nc = GS_FIRM_N_CONTRACTS(fi, f);
      R u_renew[GS_CONTRACTS_CAP], u_default[GS_CONTRACTS_CAP];
      GS_UNROLL for (int k = 0; k < nc; ++k) {  // renewal: own stream; default: counterparty's
        const int c = c0 + k;
        const int d = GS_DEFAULT_STREAM(fi, c);
        u_renew[k] = (R)to_uniform(words[2 * c]);
        u_default[k] = (R)to_uniform(words[2 * d + 1]);
      }
      FirmMonth<R> r = firm_month(fs, fi, f, now, t, u_renew, u_default);
      const R values[FO_COUNT] = {r.revenue, r.ebitda, r.cash, r.debt, r.ltv, r.ltv_breach,
                                  r.defaulted};
      GS_UNROLL for (int v = 0; v < FO_COUNT; ++v)
        emit_firm(o, months, GS_N_FIRMS(fi), v, t, f, i, values[v]);
      emit_flows(o, months, GS_N_FIRMS(fi), t, f, i, r.flows);
      seized = seized + r.seized;
    }
    GS_UNROLL for (int j = 0; j < GS_N_FACILITIES(fi); ++j) {
      emit_facility(o, months, GS_N_FACILITIES(fi), AO_BALANCE, t, j, i, fs.balance[j]);
      emit_facility(o, months, GS_N_FACILITIES(fi), AO_LOSS, t, j, i, fs.loss[j]);
    }
    if (t + 1 < months) {
      double eps[6], uni[2];
      draws(seed, path, i, t, eps, uni);
      R z[6];
      for (int a = 0; a < 6; ++a) {  // the factor is lower-triangular: b > a adds 0·eps
        double sum = 0.0;
        for (int b = 0; b <= a; ++b) sum += mp[MP_CHOL + 6 * a + b] * eps[b];
        z[a] = (R)sum;
      }
      market_advance(s, mp, in.monthly, months, t, u, z, uni, seized);
    }
  }
  GS_UNROLL for (int f = 0; f < GS_N_FIRMS(fi); ++f)
    o.default_month[(long long)f * o.n + i] = fs.default_month[f];
  GS_UNROLL for (int j = 0; j < GS_N_FACILITIES(fi); ++j) o.loss_total[(long long)j * o.n + i] = fs.loss[j];
  GS_UNROLL for (int j = 0; j < GS_N_FACILITIES(fi); ++j)
    o.exposure_at_default[(long long)j * o.n + i] = fs.ead[j];
}

// The kernels' parameter lists, declared once here for gpusim.cu's kernels and host.cpp's
// entry points; gpusim/backends/kernel_io.py reads them to order and type its arguments.
#define GPUSIM_INPUT_PARAMS                                                                  \
  MarketScalars mp, const double *monthly, const double *firm_table,                         \
      const double *contract_table, const double *facility_table, const double *capex,       \
      const double *draws, int n_firms, int n_contracts, int n_facilities, int months,       \
      u64 seed, long long path0, long long n
#define GPUSIM_SKETCH_PARAMS                                                                 \
  double min_magnitude, double log_gamma, int key_min, int key_max, int buckets
#define GPUSIM_CUBE_PARAMS(R)                                                                \
  GPUSIM_INPUT_PARAMS, R *market, R *firm, R *facility, int *default_month, R *loss_total,   \
      R *exposure_at_default, R *flows
#define GPUSIM_SUMMARY_PARAMS(R)                                                             \
  GPUSIM_INPUT_PARAMS, unsigned *market, unsigned *firm, unsigned *facility, unsigned *bust, \
      unsigned *ltv_breach, unsigned *nonfinite, int *default_month, R *loss_total,          \
      R *exposure_at_default, GPUSIM_SKETCH_PARAMS

// The Inputs and outputs the parameters make.
#define GPUSIM_INPUTS                                                                        \
  Inputs {                                                                                   \
    mp.v, monthly,                                                                           \
        {firm_table, contract_table, facility_table, capex, draws, n_firms, n_contracts,     \
         n_facilities, months},                                                              \
        months                                                                               \
  }
#define GPUSIM_SKETCH_LAYOUT                                                                 \
  SketchLayout { min_magnitude, log_gamma, key_min, key_max, buckets }
#define GPUSIM_CUBE_OUT(R)                                                                   \
  CubeOut<R> { market, firm, facility, default_month, loss_total, exposure_at_default, flows, n }
#define GPUSIM_SUMMARY_OUT(R)                                                                \
  SummaryOut<R> {                                                                            \
    market, firm, facility, bust, ltv_breach, nonfinite, default_month, loss_total,          \
        exposure_at_default, n,                                                              \
        GPUSIM_SKETCH_LAYOUT, sketch_table_applies(GPUSIM_SKETCH_LAYOUT)                     \
  }
