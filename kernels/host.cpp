// Host build of the fused model: the kernel's headers compiled as plain C++ into a small
// shared library, so CI checks the CUDA arithmetic against numpy without a GPU.
//   g++ -O2 -std=c++14 -shared -fPIC -ffp-contract=off kernels/host.cpp -o libgpusim_host.so
#include "engine.cuh"

template <typename R>
static void run_block(const double* mp, const double* monthly, const double* firm_table,
                      const double* contract_table, const double* facility_table,
                      const double* capex, const double* draws, int n_firms, int n_contracts,
                      int n_facilities, int months, u64 seed, long long path0, long long n,
                      R* market, R* firm, R* facility, int* default_month, R* loss_total,
                      R* flows) {
  Inputs in = {mp, monthly,
               {firm_table, contract_table, facility_table, capex, draws, n_firms, n_contracts,
                n_facilities, months},
               months};
  CubeOut<R> out = {market, firm, facility, default_month, loss_total, flows, n};
  for (long long i = 0; i < n; ++i) simulate_path(in, seed, (u64)(path0 + i), i, out);
}

#define HOST_BLOCK(NAME, R)                                                                   \
  void NAME(const double* mp, const double* monthly, const double* firm_table,                \
            const double* contract_table, const double* facility_table, const double* capex,  \
            const double* draws, int n_firms, int n_contracts, int n_facilities, int months,  \
            u64 seed, long long path0, long long n, R* market, R* firm, R* facility,          \
            int* default_month, R* loss_total, R* flows) {                                    \
    run_block<R>(mp, monthly, firm_table, contract_table, facility_table, capex, draws,       \
                 n_firms, n_contracts, n_facilities, months, seed, path0, n, market, firm,    \
                 facility, default_month, loss_total, flows);                                 \
  }

extern "C" {

HOST_BLOCK(gpusim_host_block_f64, double)
HOST_BLOCK(gpusim_host_block_f32, float)

// Philox words for the known-answer tests.
void gpusim_host_philox(const unsigned* counter, const unsigned* key, unsigned* out) {
  Words w = philox4x32(counter[0], counter[1], counter[2], counter[3], key[0], key[1]);
  for (int k = 0; k < 4; ++k) out[k] = w.w[k];
}
}
