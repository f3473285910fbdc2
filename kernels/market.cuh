// The market step of MODEL.md §2 for one path: the same arithmetic, in the same order, as
// gpusim/model/market.py (read the two side by side). R is float or double; parameters
// are doubles rounded to R where the numpy code combines them with R arrays.
#pragma once
#include "common.cuh"
#include "params.cuh"
#include "shapes.cuh"

#define LOG_1E6 13.815510557964274

template <typename R> struct MarketState {
  R ln_d, g, ln_e, k, ln_p, ln_p_prev, ln_v, x_r, ln_s;
  int regime;                  // 0 boom, 1 bust
#ifdef GPUSIM_SHAPED
  R u_hist[GPUSIM_LAG + 1];    // u[t − lag] .. u[t], oldest first (a shift register)
#else
  R u_hist[MAX_LAG + 1];       // u[t] at row t mod (lag + 1)
#endif
};

template <typename R> GPUSIM_HD void market_init(MarketState<R>& s, const double* mp) {
  s.ln_d = (R)mp[MP_LN_D0]; s.g = (R)mp[MP_G0]; s.regime = (int)mp[MP_REGIME0];
  s.ln_e = (R)mp[MP_LN_E0]; s.k = (R)mp[MP_K0]; s.ln_p = (R)mp[MP_LN_P0];
  s.ln_p_prev = (R)mp[MP_LN_P0]; s.ln_v = (R)mp[MP_LN_V0]; s.x_r = (R)mp[MP_R0];
  s.ln_s = (R)mp[MP_LN_S0];
  const int rows = (int)(sizeof s.u_hist / sizeof s.u_hist[0]);
  GS_UNROLL for (int i = 0; i < rows; ++i) s.u_hist[i] = (R)0;
}

// H[t]: inference GPU-hours from tokens at last month's price, plus training [H100-hours].
template <typename R>
GPUSIM_HD R gpu_hour_demand(const MarketState<R>& s, const double* mp, const double* training,
                            int t) {
  R price_term = (R)mp[MP_ELASTICITY] * (s.ln_p_prev - (R)mp[MP_LN_P_REF]);
  R inference = (R)exp(s.ln_d + s.ln_e - (R)LOG_1E6 - price_term);
  return inference + (R)training[t];
}

// u[t] = min(1, H / (K·hours)).
template <typename R>
GPUSIM_HD R utilization(R h, const MarketState<R>& s, const double* mp) {
  return gs_min((R)1, h / (s.k * (R)mp[MP_HOURS]));
}

// ln P*(u), P*(u) = P_floor + (P_cap − P_floor)·u^γ.
template <typename R> GPUSIM_HD R fair_log_price(R u, const double* mp) {
  R span = (R)mp[MP_P_SPAN];
  return (R)log((R)mp[MP_P_FLOOR] + span * (R)pow(u, (R)mp[MP_GAMMA]));
}

// Poisson count of efficiency shocks by inversion of its CDF: the terms P(N <= k) below
// u_shock. The CDF is non-decreasing, so the count stops at the first term at or above it
// (most months the first: P(N = 0) is most of the mass). Unrolled over the table's
// capacity, so every read of `mp` has a constant index (the kernel's mp is a by-value
// parameter: constant indices read the constant bank, a variable one would copy it).
GPUSIM_HD double shock_count(double u_shock, const double* mp) {
  double count = 0.0;
  const int terms = (int)mp[MP_N_POISSON];
  GS_UNROLL_FULL for (int k = 0; k < MP_COUNT - MP_POISSON_CDF; ++k) {  // the table's capacity
    if (k >= terms || !(u_shock > mp[MP_POISSON_CDF + k])) break;
    count += 1.0;
  }
  return count;
}

// mp[first + regime] for regime 0 or 1, read with constant indices (see shock_count).
GPUSIM_HD double by_regime(const double* mp, int first, int regime) {
  return regime ? mp[first + 1] : mp[first];
}

// clip(1 + ξ(u[t−L] − u*), 0, m_max), or 1 with the capacity response off.
template <typename R> GPUSIM_HD R build_multiplier(R u_lagged, const double* mp) {
  if (!GS_RESPONSE_ON(mp)) return (R)1;
  return gs_clip((R)1 + (R)mp[MP_XI] * (u_lagged - (R)mp[MP_U_STAR]), (R)0, (R)mp[MP_M_MAX]);
}

// The state at t+1 from the state at t, u[t], month t's shocks z and uniforms, and the
// GPUs fire-sold in the path at t.
template <typename R>
GPUSIM_HD void market_advance(MarketState<R>& s, const double* mp, const double* monthly,
                              int months, int t, R u, const R z[6], const double uni[2],
                              R fire_sold) {
  const double dt = mp[MP_DT];
  const double* build = monthly + MM_BUILD * months;
  const double* launch_drop = monthly + MM_LAUNCH_DROP * months;
  const int lag = GS_LAG(mp);
  if (t == 0) {
    GS_UNROLL for (int i = 0; i <= lag; ++i) s.u_hist[i] = u;
  }
#ifdef GPUSIM_SHAPED  // the same values as the ring below, with constant indices
  GS_UNROLL for (int i = 0; i < lag; ++i) s.u_hist[i] = s.u_hist[i + 1];
  s.u_hist[lag] = u;
  R u_lagged = s.u_hist[0];
#else
  s.u_hist[t % (lag + 1)] = u;
  R u_lagged = s.u_hist[(t + 1) % (lag + 1)];
#endif

  R g_target = (R)by_regime(mp, MP_G_MEAN, s.regime);
  double jumps = shock_count(uni[1], mp) * mp[MP_JUMP_SIZE];

  R ln_d = (R)(s.ln_d + (s.g - (R)mp[MP_HALF_VAR_D]) * (R)dt + (R)mp[MP_VOL_D] * z[0]
               + mp[MP_REBOUND] * jumps);
  R g = s.g + (R)mp[MP_KAPPA_G] * (g_target - s.g) * (R)dt + (R)mp[MP_VOL_G] * z[1];
  R ln_e = (R)(s.ln_e - (R)mp[MP_ETA_DT] - jumps);
  int regime = s.regime;
  if (GS_REGIMES_ON(mp)) {
    double switch_p = by_regime(mp, MP_P_SWITCH, s.regime);
    regime = uni[0] < switch_p ? 1 - s.regime : s.regime;
  }
  R k = s.k * (R)mp[MP_RETENTION] + (R)build[t] * build_multiplier(u_lagged, mp);
  double drop = t + 1 < months ? launch_drop[t + 1] : 0.0;
  R ln_p = s.ln_p + (R)mp[MP_KAPPA_P] * (fair_log_price(u, mp) - s.ln_p) * (R)dt
           + (R)mp[MP_VOL_P] * z[2] - (R)drop;
  R fire = GS_FIRE_SALE_ON(mp) ? (R)mp[MP_PHI] * fire_sold / (R)mp[MP_DEPTH] : (R)0;
  R ln_v = s.ln_v + (R)mp[MP_BETA] * (ln_p - s.ln_p) - (R)mp[MP_DELTA_DT]
           + (R)mp[MP_VOL_V] * z[3] - fire;
  ln_v = gs_max(ln_v, (R)mp[MP_LN_V_SCRAP]);
  R x_r = s.x_r + (R)mp[MP_KAPPA_R] * ((R)mp[MP_R_MEAN] - s.x_r) * (R)dt
          + (R)mp[MP_VOL_R] * z[4];
  R ln_s = s.ln_s + (R)mp[MP_KAPPA_S] * ((R)mp[MP_LN_S_MEAN] - s.ln_s) * (R)dt
           + (R)mp[MP_VOL_S] * z[5];

  s.ln_p_prev = s.ln_p;
  s.ln_d = ln_d; s.g = g; s.ln_e = ln_e; s.regime = regime; s.k = k; s.ln_p = ln_p;
  s.ln_v = ln_v; s.x_r = x_r; s.ln_s = ln_s;
}
