// Shapes at compile time. gpusim/backends/cuda.py compiles each run's kernel with the
// run's shape as macros (kernel_io.shape_defines): GPUSIM_SHAPED, the counts
// GPUSIM_N_FIRMS / _N_CONTRACTS / _N_FACILITIES, each firm's rows as constant expressions
// GPUSIM_FIRM_CONTRACT0(f) / _FIRM_N_CONTRACTS(f) / _FIRM_FACILITY0(f) /
// _FIRM_N_FACILITIES(f), each contract's default stream GPUSIM_DEFAULT_STREAM(c), the
// utilization lag GPUSIM_LAG and the switches GPUSIM_REGIMES_ON / _RESPONSE_ON /
// _FIRE_SALE_ON (0 or 1). Loops over firms, contracts and facilities then have constant
// bounds and are unrolled, every index into the per-path state is a constant, and the
// state lives in registers. Without GPUSIM_SHAPED (the host build, the native CPU build,
// the PTX check) the same headers read the counts and switches at run time from the
// parameter tables, with the MAX_* capacities of params.cuh.
#pragma once
#include "params.cuh"

#ifdef GPUSIM_SHAPED
#define GS_CAP(n) ((n) > 0 ? (n) : 1)  // no zero-length arrays
#define GS_FIRMS_CAP GS_CAP(GPUSIM_N_FIRMS)
#define GS_CONTRACTS_CAP GS_CAP(GPUSIM_N_CONTRACTS)
#define GS_FACILITIES_CAP GS_CAP(GPUSIM_N_FACILITIES)
#define GS_N_FIRMS(in) GPUSIM_N_FIRMS
#define GS_N_CONTRACTS(in) GPUSIM_N_CONTRACTS
#define GS_N_FACILITIES(in) GPUSIM_N_FACILITIES
#define GS_FIRM_CONTRACT0(in, f) GPUSIM_FIRM_CONTRACT0(f)
#define GS_FIRM_N_CONTRACTS(in, f) GPUSIM_FIRM_N_CONTRACTS(f)
#define GS_FIRM_FACILITY0(in, f) GPUSIM_FIRM_FACILITY0(f)
#define GS_FIRM_N_FACILITIES(in, f) GPUSIM_FIRM_N_FACILITIES(f)
#define GS_DEFAULT_STREAM(in, c) GPUSIM_DEFAULT_STREAM(c)
#define GS_LAG(mp) GPUSIM_LAG
#define GS_REGIMES_ON(mp) (GPUSIM_REGIMES_ON != 0)
#define GS_RESPONSE_ON(mp) (GPUSIM_RESPONSE_ON != 0)
#define GS_FIRE_SALE_ON(mp) (GPUSIM_FIRE_SALE_ON != 0)
#if defined(__CUDACC__) || defined(__clang__)
#define GS_UNROLL _Pragma("unroll")
#else
#define GS_UNROLL _Pragma("GCC unroll 64")
#endif
#else
#define GS_FIRMS_CAP MAX_FIRMS
#define GS_CONTRACTS_CAP MAX_CONTRACTS
#define GS_FACILITIES_CAP MAX_FACILITIES
#define GS_N_FIRMS(in) ((in).n_firms)
#define GS_N_CONTRACTS(in) ((in).n_contracts)
#define GS_N_FACILITIES(in) ((in).n_facilities)
#define GS_FIRM_CONTRACT0(in, f) ((int)(in).firm_table[(f) * FT_COUNT + FT_CONTRACT0])
#define GS_FIRM_N_CONTRACTS(in, f) ((int)(in).firm_table[(f) * FT_COUNT + FT_N_CONTRACTS])
#define GS_FIRM_FACILITY0(in, f) ((int)(in).firm_table[(f) * FT_COUNT + FT_FACILITY0])
#define GS_FIRM_N_FACILITIES(in, f) ((int)(in).firm_table[(f) * FT_COUNT + FT_N_FACILITIES])
#define GS_DEFAULT_STREAM(in, c) ((int)(in).contract_table[(c) * CT_COUNT + CT_DEFAULT_STREAM])
#define GS_LAG(mp) ((int)(mp)[MP_LAG])
#define GS_REGIMES_ON(mp) ((mp)[MP_REGIMES_ON] != 0.0)
#define GS_RESPONSE_ON(mp) ((mp)[MP_RESPONSE_ON] != 0.0)
#define GS_FIRE_SALE_ON(mp) ((mp)[MP_FIRE_SALE_ON] != 0.0)
#define GS_UNROLL
#endif
