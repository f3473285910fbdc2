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

struct Inputs {
  const double* mp;       // MP_COUNT market scalars
  const double* monthly;  // MM_COUNT x months
  FirmInputs firms;
  int months;
};

// Where one block's cube goes: (variable, month, [entity,] path) with the path fastest, so
// neighbouring threads write neighbouring addresses. Offsets are 64-bit.
template <typename R> struct CubeOut {
  R* market;            // MO_COUNT x months x n
  R* firm;              // FO_COUNT x months x n_firms x n
  R* facility;          // AO_COUNT x months x n_facilities x n
  int* default_month;   // n_firms x n
  R* loss_total;        // n_facilities x n
  R* flows;             // FL_COUNT x months x n_firms x n, or null
  long long n;
};

template <typename R>
GPUSIM_HD void put_market(const CubeOut<R>& o, int months, int v, int t, long long i, R x) {
  o.market[((long long)v * months + t) * o.n + i] = x;
}

template <typename R>
GPUSIM_HD void put_entity(R* base, int months, int entities, int v, int t, int e, long long n,
                          long long i, R x) {
  base[(((long long)v * months + t) * entities + e) * n + i] = x;
}

// Simulate path `path` (its index i within the block) and write its cube.
template <typename R>
GPUSIM_HD void simulate_path(const Inputs& in, u64 seed, u64 path, long long i,
                             const CubeOut<R>& o) {
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
    put_market(o, months, MO_TOKEN_DEMAND, t, i, (R)exp(s.ln_d));
    put_market(o, months, MO_GPU_HOUR_DEMAND, t, i, h);
    put_market(o, months, MO_CAPACITY, t, i, s.k);
    put_market(o, months, MO_UTILIZATION, t, i, u);
    put_market(o, months, MO_RENTAL_PRICE, t, i, now.price);
    put_market(o, months, MO_COLLATERAL_VALUE, t, i, now.collateral);
    put_market(o, months, MO_SOFR, t, i, now.sofr);
    put_market(o, months, MO_CREDIT_SPREAD, t, i, now.spread);
    put_market(o, months, MO_REGIME, t, i, (R)s.regime);

    R seized = (R)0;
    for (int f = 0; f < fi.n_firms; ++f) {
      const double* ft = fi.firm_table + f * FT_COUNT;
      int c0 = (int)ft[FT_CONTRACT0], nc = (int)ft[FT_N_CONTRACTS];
      R u_renew[MAX_CONTRACTS], u_default[MAX_CONTRACTS];
      for (int k = 0; k < nc; ++k) {  // renewal: own stream; default: counterparty's
        double uni[2];
        contract_draws(seed, path, (u32)t, c0 + k, uni);
        u_renew[k] = (R)uni[0];
        contract_draws(seed, path, (u32)t,
                       (int)fi.contract_table[(c0 + k) * CT_COUNT + CT_DEFAULT_STREAM], uni);
        u_default[k] = (R)uni[1];
      }
      FirmMonth<R> r = firm_month(fs, fi, f, now, t, u_renew, u_default);
      const R values[FO_COUNT] = {r.revenue, r.ebitda, r.cash, r.debt, r.ltv, r.ltv_breach,
                                  r.defaulted};
      for (int v = 0; v < FO_COUNT; ++v)
        put_entity(o.firm, months, fi.n_firms, v, t, f, o.n, i, values[v]);
      if (o.flows)
        for (int v = 0; v < FL_COUNT; ++v)
          put_entity(o.flows, months, fi.n_firms, v, t, f, o.n, i, r.flows[v]);
      seized = seized + r.seized;
    }
    for (int j = 0; j < fi.n_facilities; ++j) {
      put_entity(o.facility, months, fi.n_facilities, AO_BALANCE, t, j, o.n, i, fs.balance[j]);
      put_entity(o.facility, months, fi.n_facilities, AO_LOSS, t, j, o.n, i, fs.loss[j]);
    }
    if (t + 1 < months) {
      double eps[6], uni[2];
      market_draws(seed, path, (u32)t, eps, uni);
      R z[6];
      for (int a = 0; a < 6; ++a) {
        double sum = 0.0;
        for (int b = 0; b < 6; ++b) sum += mp[MP_CHOL + 6 * a + b] * eps[b];
        z[a] = (R)sum;
      }
      market_advance(s, mp, in.monthly, months, t, u, z, uni, seized);
    }
  }
  for (int f = 0; f < fi.n_firms; ++f) o.default_month[(long long)f * o.n + i] = fs.default_month[f];
  for (int j = 0; j < fi.n_facilities; ++j) o.loss_total[(long long)j * o.n + i] = fs.loss[j];
}
