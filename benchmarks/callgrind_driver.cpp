// One block of the fused kernel's host build, for callgrind (benchmarks/callgrind.py):
// reads the packed inputs that callgrind.py wrote and runs host.cpp's entry point once.
//   g++ -O2 -std=c++14 -ffp-contract=off -I kernels benchmarks/callgrind_driver.cpp
//   ./a.out INPUTS MODE(cube|summary) DTYPE(f32|f64) PATHS
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#include "host.cpp"
#include "sketch_edges.cuh"  // gpusim.sketch's layout (the kernel arguments)

static std::vector<double> read_array(FILE* f) {
  long long count = 0;
  if (fread(&count, sizeof count, 1, f) != 1) exit(3);
  std::vector<double> out((size_t)count + 1);
  if (count && fread(out.data(), sizeof(double), (size_t)count, f) != (size_t)count) exit(3);
  return out;
}

template <typename R>
static void run(const char* mode, std::vector<std::vector<double>>& a, int n_firms,
                int n_contracts, int n_facilities, int months, long long n) {
  const double* in[7];
  for (int k = 0; k < 7; ++k) in[k] = a[k].data();
  MarketScalars mp;  // by value, as the kernel takes it
  memcpy(mp.v, in[0], sizeof mp.v);
  std::vector<int> default_month((size_t)(n_firms + 1) * n);
  std::vector<R> loss_total((size_t)(n_facilities + 1) * n), ead((size_t)(n_facilities + 1) * n);
  if (strcmp(mode, "cube") == 0) {
    std::vector<R> market((size_t)MO_COUNT * months * n), firm((size_t)FO_COUNT * months * (n_firms + 1) * n),
        facility((size_t)AO_COUNT * months * (n_facilities + 1) * n);
    if (sizeof(R) == 8)
      gpusim_host_block_f64(mp, in[1], in[2], in[3], in[4], in[5], in[6], n_firms, n_contracts,
                            n_facilities, months, 1, 0, n, (double*)market.data(), (double*)firm.data(),
                            (double*)facility.data(), default_month.data(), (double*)loss_total.data(), (double*)ead.data(), nullptr);
    else
      gpusim_host_block_f32(mp, in[1], in[2], in[3], in[4], in[5], in[6], n_firms, n_contracts,
                            n_facilities, months, 1, 0, n, (float*)market.data(), (float*)firm.data(),
                            (float*)facility.data(), default_month.data(), (float*)loss_total.data(), (float*)ead.data(), nullptr);
  } else {
    const int buckets = 2 * GS_SKETCH_SIDE + 1;
    std::vector<unsigned> market((size_t)MO_COUNT * months * buckets),
        firm((size_t)FO_COUNT * months * (n_firms + 1) * buckets),
        facility((size_t)AO_COUNT * months * (n_facilities + 1) * buckets), bust(months),
        breach((size_t)months * (n_firms + 1)), nonfinite(1);
    if (sizeof(R) == 8)
      gpusim_host_summary_f64(mp, in[1], in[2], in[3], in[4], in[5], in[6], n_firms, n_contracts,
                              n_facilities, months, 1, 0, n, market.data(), firm.data(), facility.data(),
                              bust.data(), breach.data(), nonfinite.data(), default_month.data(),
                              (double*)loss_total.data(), (double*)ead.data(), GS_SKETCH_MIN_MAGNITUDE, GS_SKETCH_LOG_GAMMA,
                              GS_SKETCH_KEY_MIN, GS_SKETCH_KEY_MAX, buckets);
    else
      gpusim_host_summary_f32(mp, in[1], in[2], in[3], in[4], in[5], in[6], n_firms, n_contracts,
                              n_facilities, months, 1, 0, n, market.data(), firm.data(), facility.data(),
                              bust.data(), breach.data(), nonfinite.data(), default_month.data(),
                              (float*)loss_total.data(), (float*)ead.data(), GS_SKETCH_MIN_MAGNITUDE, GS_SKETCH_LOG_GAMMA,
                              GS_SKETCH_KEY_MIN, GS_SKETCH_KEY_MAX, buckets);
    if (nonfinite[0]) exit(4);
  }
}

int main(int argc, char** argv) {
  if (argc != 5) return 2;
  FILE* f = fopen(argv[1], "rb");
  if (!f) return 2;
  int shape[4];  // n_firms, n_contracts, n_facilities, months
  if (fread(shape, sizeof(int), 4, f) != 4) return 3;
  std::vector<std::vector<double>> arrays;
  for (int k = 0; k < 7; ++k) arrays.push_back(read_array(f));
  fclose(f);
  long long n = atoll(argv[4]);
  if (strcmp(argv[3], "f64") == 0)
    run<double>(argv[2], arrays, shape[0], shape[1], shape[2], shape[3], n);
  else
    run<float>(argv[2], arrays, shape[0], shape[1], shape[2], shape[3], n);
  return 0;
}
