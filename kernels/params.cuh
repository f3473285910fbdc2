// Layout of the flat parameter arrays the kernels read. gpusim/backends/packing.py parses
// these enums to pack them, so this header is the single definition of the layout.
// Every entry is a double; integers (counts, month indices, flags) are stored exactly.
// An entry is named after what it holds: <PREFIX><FIELD> takes the field (or read-only
// property) `field` of the dataclass the enum packs (MarketParams, FirmSpec, ContractSpec,
// FacilitySpec), and spans the slots up to the next entry: MP_G_MEAN + regime.
#pragma once

// Market scalars: `mp`, MP_COUNT doubles.
// (σ's, P_ref, η, ω, δ and P_cap enter only through the derived entries below.)
enum MarketParam {
  MP_DT, MP_LN_D0, MP_G0,
  MP_G_MEAN,                    // (boom, bust)
  MP_KAPPA_G = MP_G_MEAN + 2,
  MP_ELASTICITY,
  MP_REGIME0,
  MP_P_SWITCH,                  // (boom -> bust, bust -> boom)
  MP_REGIMES_ON = MP_P_SWITCH + 2,
  MP_LN_E0, MP_JUMP_SIZE, MP_REBOUND, MP_N_POISSON,
  MP_K0, MP_XI, MP_U_STAR, MP_M_MAX, MP_LAG, MP_HOURS, MP_RESPONSE_ON,
  MP_LN_P0, MP_P_FLOOR, MP_GAMMA, MP_KAPPA_P,
  MP_LN_V0, MP_BETA, MP_PHI, MP_DEPTH, MP_LN_V_SCRAP, MP_FIRE_SALE_ON,
  MP_R0, MP_R_MEAN, MP_KAPPA_R, MP_LN_S0, MP_LN_S_MEAN, MP_KAPPA_S,
  // Derived once on the host (packing.derived_market) in the double operations the kernel
  // would repeat every path and month, so the bits are the same:
  MP_LN_P_REF,                  // ln P_ref
  MP_HALF_VAR_D,                // σ_D²/2
  MP_VOL_D, MP_VOL_G, MP_VOL_P, MP_VOL_V, MP_VOL_R, MP_VOL_S,  // σ√Δ of each shock
  MP_ETA_DT, MP_DELTA_DT,       // ηΔ, δΔ
  MP_RETENTION,                 // 1 − ωΔ
  MP_P_SPAN,                    // P_cap − P_floor
  MP_CHOL,                      // 6 x 6 lower-triangular factor, row-major
  MP_POISSON_CDF = MP_CHOL + 36,  // P(N <= k), k = 0 .. MP_N_POISSON - 1
  MP_COUNT = MP_POISSON_CDF + 12
};

// The market scalars as one by-value kernel argument: a launch's parameters live in the
// constant bank, read uniformly by every thread, so the kernel loads none from memory.
struct MarketScalars {
  double v[MP_COUNT];
};

// Per-month market schedules: `monthly`, MM_COUNT rows of `months` doubles.
enum MarketMonthly { MM_TRAINING, MM_BUILD, MM_LAUNCH_DROP, MM_COUNT };

// One row per firm: `firm_table`, FT_COUNT doubles each.
enum FirmField {
  FT_GPUS,
  FT_OPERATING_COST,            // GPUs·cost per GPU-hour·hours + overhead [USD/month]
  FT_OPENING_CASH,
  FT_RECOVERY,                  // 1 − haircut: what seized GPUs sell for, per USD of V
  FT_CONTRACT0, FT_N_CONTRACTS, FT_FACILITY0, FT_N_FACILITIES, FT_COUNT
};

// One row per contract (all firms, config order): `contract_table`.
enum ContractField {
  CT_GPUS, CT_PRICE, CT_START, CT_END, CT_P0, CT_THETA, CT_PREMIUM, CT_TERM,
  CT_INSOURCE_MONTH, CT_P_INSOURCE,
  CT_HAZARD,                    // (boom, bust) per month
  CT_STREAM = CT_HAZARD + 2, CT_DEFAULT_STREAM, CT_COUNT
};

// One row per facility (firms in order, seniority order within a firm): `facility_table`.
enum FacilityField {
  FA_BALANCE, FA_UNDRAWN, FA_FLOATING, FA_RATE, FA_AMORTIZATION, FA_MATURITY,
  FA_REFI_MAX_LTV, FA_REFI_MAX_SPREAD, FA_REFI_TERM, FA_PLEDGED_SHARE, FA_SECURED_MASK,
  FA_CASH_SWEEP,
  FA_MAX_LTV, FA_MIN_LIQUIDITY, FA_COUNT
};

// Outputs, named as in the cube (lower-cased without the prefix): gpusim/backends/packing.py
// maps them to variables by name.
enum MarketOutput { MO_TOKEN_DEMAND, MO_GPU_HOUR_DEMAND, MO_CAPACITY, MO_UTILIZATION,
                    MO_RENTAL_PRICE, MO_COLLATERAL_VALUE, MO_SOFR, MO_CREDIT_SPREAD, MO_REGIME,
                    MO_COUNT };
enum FirmOutput { FO_REVENUE, FO_EBITDA, FO_CASH, FO_DEBT, FO_LTV, FO_LTV_BREACH, FO_DEFAULTED,
                  FO_COUNT };
enum FacilityOutput { AO_BALANCE, AO_LOSS, AO_COUNT };
// Cash-flow terms, gpusim.model.firms.FLOWS.
enum Flow { FL_REVENUE, FL_OPERATING_COST, FL_CAPEX, FL_DRAWS, FL_INTEREST, FL_PRINCIPAL,
            FL_SWEEP, FL_REPAYMENT, FL_MARGIN_CALL, FL_SETTLEMENT, FL_COUNT };

// Capacity of the per-path state the kernel keeps (validated in gpusim/config.py).
#define MAX_FIRMS 16
#define MAX_CONTRACTS 32
#define MAX_FACILITIES 32
#define MAX_LAG 60

enum Amortization { AM_LEVEL = 0, AM_STRAIGHT_LINE = 1, AM_BULLET = 2 };
