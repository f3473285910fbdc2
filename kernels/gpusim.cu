// The fused kernel: one thread per path, months in a loop, state in registers (spilling
// to local memory for the firms' arrays), market and firms coupled inside the path.
// Loaded by gpusim/backends/cuda.py with cupy.RawModule; compiled to PTX in CI.
#include "engine.cuh"

template <typename R>
__device__ void cube_block(const double* mp, const double* monthly, const double* firm_table,
                           const double* contract_table, const double* facility_table,
                           const double* capex, const double* draws, int n_firms,
                           int n_contracts, int n_facilities, int months, u64 seed,
                           long long path0, long long n, R* market, R* firm, R* facility,
                           int* default_month, R* loss_total, R* flows) {
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  Inputs in = {mp, monthly,
               {firm_table, contract_table, facility_table, capex, draws, n_firms, n_contracts,
                n_facilities, months},
               months};
  CubeOut<R> out = {market, firm, facility, default_month, loss_total, flows, n};
  simulate_path(in, seed, (u64)(path0 + i), i, out);
}

#define CUBE_KERNEL(NAME, R)                                                                  \
  extern "C" __global__ void NAME(                                                            \
      const double* mp, const double* monthly, const double* firm_table,                      \
      const double* contract_table, const double* facility_table, const double* capex,        \
      const double* draws, int n_firms, int n_contracts, int n_facilities, int months,        \
      u64 seed, long long path0, long long n, R* market, R* firm, R* facility,                \
      int* default_month, R* loss_total, R* flows) {                                          \
    cube_block<R>(mp, monthly, firm_table, contract_table, facility_table, capex, draws,      \
                  n_firms, n_contracts, n_facilities, months, seed, path0, n, market, firm,   \
                  facility, default_month, loss_total, flows);                                \
  }

CUBE_KERNEL(simulate_cube_f64, double)
CUBE_KERNEL(simulate_cube_f32, float)
