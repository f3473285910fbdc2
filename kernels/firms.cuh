// GPU lessors and their debt (MODEL.md §3) for one path: the same arithmetic, in the same
// order, as gpusim/model/firms.py (read the two side by side; the step numbers match).
#pragma once
#include "common.cuh"
#include "params.cuh"
#include "shapes.cuh"

template <typename R> struct FirmsState {
  R cash[GS_FIRMS_CAP];
  int defaulted[GS_FIRMS_CAP], default_month[GS_FIRMS_CAP];
  int active[GS_CONTRACTS_CAP], end[GS_CONTRACTS_CAP];
  int gone[GS_CONTRACTS_CAP];  // the contract's counterparty has defaulted (for good)
  R price[GS_CONTRACTS_CAP];
  R balance[GS_FACILITIES_CAP], undrawn[GS_FACILITIES_CAP], rate[GS_FACILITIES_CAP];
  R loss[GS_FACILITIES_CAP], posted[GS_FACILITIES_CAP];
  R ead[GS_FACILITIES_CAP];  // exposure at default: the balance entering the default month
  int maturity[GS_FACILITIES_CAP], floating[GS_FACILITIES_CAP];
};

// The market of one month as the firms see it.
template <typename R> struct MarketNow {
  R price, utilization, collateral, sofr, spread;
  int regime;
  double hours;
};

// One firm's month: the cube's firm variables, the GPUs it dumped, and its cash flows.
template <typename R> struct FirmMonth {
  R revenue, ebitda, cash, debt, ltv, ltv_breach, defaulted, seized;
  R flows[FL_COUNT];
};

struct FirmInputs {
  const double* __restrict__ firm_table;      // n_firms x FT_COUNT
  const double* __restrict__ contract_table;  // n_contracts x CT_COUNT
  const double* __restrict__ facility_table;  // n_facilities x FA_COUNT
  const double* __restrict__ capex;           // n_firms x months
  const double* __restrict__ draws;           // n_facilities x months
  int n_firms, n_contracts, n_facilities, months;
};

template <typename R>
GPUSIM_HD void firms_init(FirmsState<R>& s, const FirmInputs& in) {
  GS_UNROLL for (int f = 0; f < GS_N_FIRMS(in); ++f) {
    s.cash[f] = (R)in.firm_table[f * FT_COUNT + FT_OPENING_CASH];
    s.defaulted[f] = 0;
    s.default_month[f] = -1;
  }
  GS_UNROLL for (int c = 0; c < GS_N_CONTRACTS(in); ++c) {
    const double* ct = in.contract_table + c * CT_COUNT;
    s.active[c] = ct[CT_START] <= 0.0;
    s.gone[c] = 0;
    s.price[c] = (R)ct[CT_PRICE];
    s.end[c] = (int)ct[CT_END];
  }
  GS_UNROLL for (int j = 0; j < GS_N_FACILITIES(in); ++j) {
    const double* fa = in.facility_table + j * FA_COUNT;
    s.balance[j] = (R)fa[FA_BALANCE]; s.undrawn[j] = (R)fa[FA_UNDRAWN];
    s.maturity[j] = (int)fa[FA_MATURITY]; s.floating[j] = fa[FA_FLOATING] != 0.0;
    s.rate[j] = (R)fa[FA_RATE]; s.loss[j] = (R)0; s.posted[j] = (R)0;
    s.ead[j] = (R)0;
  }
}

// clip(p0·(P/price)^θ, 0, 1), or p_insource once the counterparty insources.
template <typename R>
GPUSIM_HD R renewal_probability(const double* ct, R spot, R price, int t) {
  if (t >= (int)ct[CT_INSOURCE_MONTH]) return (R)ct[CT_P_INSOURCE];
  return gs_clip((R)ct[CT_P0] * (R)pow(spot / price, (R)ct[CT_THETA]), (R)0, (R)1);
}

// Step 1: starts, renewals or lapses at term end, counterparty defaults.
template <typename R>
GPUSIM_HOT void update_contracts(FirmsState<R>& s, const double* contract_table, int first,
                                int count, const MarketNow<R>& m, int t, const R* u_renew,
                                const R* u_default) {
  GS_UNROLL for (int k = 0; k < count; ++k) {
    int c = first + k;
    const double* ct = contract_table + c * CT_COUNT;
    double hazard = ct[CT_HAZARD + m.regime];
    s.gone[c] = s.gone[c] || u_default[k] < (R)hazard;
    if (t == (int)ct[CT_START]) s.active[c] = !s.gone[c];
    int due = s.active[c] && s.end[c] < t;
    int renew = due && u_renew[k] < renewal_probability(ct, m.price, s.price[c], t);
    if (renew) {
      s.price[c] = m.price * (R)(1.0 + ct[CT_PREMIUM]);
      s.end[c] = t + (int)ct[CT_TERM] - 1;
    }
    s.active[c] = s.active[c] && !(due && !renew) && !s.gone[c];
  }
}

// Annuity payment that retires `balance` in `months_left` payments at `monthly_rate`.
template <typename R> GPUSIM_HD R level_payment(R balance, R monthly_rate, int months_left) {
  if (monthly_rate > (R)0)
    return balance * monthly_rate / ((R)1 - (R)pow((R)1 + monthly_rate, (R)(-months_left)));
  return balance / (R)months_left;
}

// Principal due this month under the facility's amortization.
template <typename R>
GPUSIM_HD R scheduled_principal(int amortization, R balance, R interest, R monthly_rate,
                                int months_left) {
  if (amortization == AM_BULLET) return (R)0;
  if (amortization == AM_STRAIGHT_LINE) return balance / (R)months_left;
  return level_payment(balance, monthly_rate, months_left) - interest;
}

// Advance firm f by month t on one path.
template <typename R>
GPUSIM_HOT FirmMonth<R> firm_month(FirmsState<R>& s, const FirmInputs& in, int f,
                                  const MarketNow<R>& m, int t, const R* u_renew,
                                  const R* u_default) {
  const double* ft = in.firm_table + f * FT_COUNT;
  const int c0 = GS_FIRM_CONTRACT0(in, f), nc = GS_FIRM_N_CONTRACTS(in, f);
  const int j0 = GS_FIRM_FACILITY0(in, f), nj = GS_FIRM_N_FACILITIES(in, f);
  const double gpus = ft[FT_GPUS];
  FirmMonth<R> out = {};
  if (s.defaulted[f]) {
    R debt = (R)0;
    GS_UNROLL for (int j = j0; j < j0 + nj; ++j) debt = debt + s.balance[j];
    out.cash = s.cash[f]; out.debt = debt; out.defaulted = (R)1;
    return out;
  }
  update_contracts(s, in.contract_table, c0, nc, m, t, u_renew, u_default);
  R entering[GS_FACILITIES_CAP];  // last month's closing balances: the exposure at default
  GS_UNROLL for (int j = j0; j < j0 + nj; ++j) entering[j - j0] = s.balance[j];

  // 2. revenue and operating cost
  R contracted = (R)0, contract_revenue = (R)0, secured_revenue[GS_CONTRACTS_CAP];
  GS_UNROLL for (int k = 0; k < nc; ++k) {
    int c = c0 + k;
    R g = s.active[c] ? (R)in.contract_table[c * CT_COUNT + CT_GPUS] : (R)0;
    R earned = g * s.price[c] * (R)m.hours;
    contracted = contracted + g;
    contract_revenue = contract_revenue + earned;
    secured_revenue[k] = earned;
  }
  R spot_revenue = ((R)gpus - contracted) * m.price * m.utilization * (R)m.hours;
  R revenue = contract_revenue + spot_revenue;
  R operating_cost = (R)ft[FT_OPERATING_COST];
  R capex = (R)in.capex[f * in.months + t];

  // 3. cash before debt service, with draws
  R draws = (R)0;
  GS_UNROLL for (int j = j0; j < j0 + nj; ++j) {
    R d = gs_min((R)in.draws[j * in.months + t], s.undrawn[j]);
    s.undrawn[j] = s.undrawn[j] - d;
    s.balance[j] = s.balance[j] + d;
    draws = draws + d;
  }
  R cash = s.cash[f] + revenue - operating_cost - capex + draws;
  const R cash_before_service = cash;
  R posted_before = (R)0, claims[GS_FACILITIES_CAP];
  GS_UNROLL for (int j = j0; j < j0 + nj; ++j) posted_before = posted_before + s.posted[j];

  // 4-6. debt service, maturity, LTV test
  R interest_sum = (R)0, principal_sum = (R)0, sweep_sum = (R)0, repay_sum = (R)0;
  R call_sum = (R)0, pledged_value_sum = (R)0, pledged_balance_sum = (R)0, required = (R)0;
  int breach = 0;
  R pledged_total = (R)0;  // pledged to lenders with a claim: their GPUs are seized
  GS_UNROLL for (int j = j0; j < j0 + nj; ++j) {
    const double* fa = in.facility_table + j * FA_COUNT;
    R b = s.balance[j];
    R annual = s.floating[j] ? m.sofr + s.rate[j] : s.rate[j];
    R monthly = annual / (R)12;
    R interest = b * monthly;
    claims[j - j0] = b + interest;
    int months_left = gs_max(s.maturity[j] - t + 1, 1);
    R principal = gs_min(scheduled_principal((int)fa[FA_AMORTIZATION], b, interest, monthly,
                                             months_left), b);
    b = b - principal;
    R sweep = (R)0;
    unsigned mask = (unsigned)fa[FA_SECURED_MASK];
    if (mask != 0u && fa[FA_CASH_SWEEP] > 0.0) {
      R earned = (R)0;
      GS_UNROLL for (int k = 0; k < nc; ++k)
        if (mask & (1u << k)) earned = earned + secured_revenue[k];
      sweep = gs_min((R)fa[FA_CASH_SWEEP] * gs_max(earned - interest - principal, (R)0), b);
      b = b - sweep;
    }
    R collateral = (R)(fa[FA_PLEDGED_SHARE] * gpus) * m.collateral;
    R ltv = collateral > (R)0 ? b / collateral : (R)0;
    int at_maturity = s.maturity[j] == t && b > (R)0;
    int roll = at_maturity && ltv <= (R)fa[FA_REFI_MAX_LTV] && m.spread <= (R)fa[FA_REFI_MAX_SPREAD];
    R repayment = at_maturity && !roll ? b : (R)0;
    b = b - repayment;
    if (roll) {
      s.maturity[j] += (int)fa[FA_REFI_TERM];
      s.floating[j] = 1;
      s.rate[j] = m.spread;
    }
    ltv = collateral > (R)0 ? b / collateral : (R)0;
    int over = 0;
    R to_post = (R)0;
    if (isfinite(fa[FA_MAX_LTV])) {
      over = ltv > (R)fa[FA_MAX_LTV] && b > (R)0;
      to_post = over ? b - (R)fa[FA_MAX_LTV] * collateral : (R)0;
    }
    R call = to_post - s.posted[j];  // negative: cash released back to the firm
    s.posted[j] = to_post;
    breach = breach || over;
    if (fa[FA_PLEDGED_SHARE] > 0.0 && isfinite(fa[FA_MAX_LTV])) {
      pledged_value_sum = pledged_value_sum + collateral;
      pledged_balance_sum = pledged_balance_sum + b;
    }
    required = gs_max(required, b > (R)0 ? (R)fa[FA_MIN_LIQUIDITY] : (R)0);
    s.balance[j] = b;
    cash = cash - interest - principal - sweep - repayment - call;
    interest_sum = interest_sum + interest; principal_sum = principal_sum + principal;
    sweep_sum = sweep_sum + sweep; repay_sum = repay_sum + repayment; call_sum = call_sum + call;
    pledged_total = pledged_total + (claims[j - j0] > (R)0 ? (R)fa[FA_PLEDGED_SHARE] : (R)0);
  }

  // 7. liquidity test and default
  int defaults = cash < required || cash < (R)0;
  R seized = defaults ? pledged_total * (R)gpus : (R)0;
  if (defaults) {
    R pool = seized * m.collateral * (R)ft[FT_RECOVERY]
             + gs_max(cash_before_service + posted_before, (R)0);
    GS_UNROLL for (int j = j0; j < j0 + nj; ++j) {
      R paid = gs_min(pool, claims[j - j0]);
      pool = pool - paid;
      s.loss[j] = s.loss[j] + (claims[j - j0] - paid);
      s.ead[j] = entering[j - j0];
      s.balance[j] = (R)0;
      s.posted[j] = (R)0;
    }
  }
  R ltv_firm = pledged_value_sum > (R)0 ? pledged_balance_sum / pledged_value_sum : (R)0;
  out.flows[FL_REVENUE] = revenue; out.flows[FL_OPERATING_COST] = operating_cost;
  out.flows[FL_CAPEX] = capex; out.flows[FL_DRAWS] = draws;
  if (!defaults) {
    out.flows[FL_INTEREST] = interest_sum; out.flows[FL_PRINCIPAL] = principal_sum;
    out.flows[FL_SWEEP] = sweep_sum; out.flows[FL_REPAYMENT] = repay_sum;
    out.flows[FL_MARGIN_CALL] = call_sum;
  } else {
    out.flows[FL_SETTLEMENT] = cash_before_service;
  }
  s.cash[f] = defaults ? (R)0 : cash;
  if (defaults) { s.default_month[f] = t; s.defaulted[f] = 1; }
  R debt = (R)0;
  GS_UNROLL for (int j = j0; j < j0 + nj; ++j) debt = debt + s.balance[j];
  out.revenue = revenue;
  out.ebitda = revenue - operating_cost;
  out.cash = s.cash[f];
  out.debt = debt;
  out.ltv = ltv_firm;
  out.ltv_breach = breach ? (R)1 : (R)0;
  out.defaulted = s.defaulted[f] ? (R)1 : (R)0;
  out.seized = seized;
  return out;
}
