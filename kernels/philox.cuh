// Philox4x32-10 counter-based streams: the same layout as gpusim/streams.py, bit for bit.
//
//   key     = (seed mod 2^32, seed div 2^32)
//   counter = (slot, month, path mod 2^32, path div 2^32)
//   uniform = (word + 0.5) * 2^-32 in (0, 1), in double
//   normals = Box-Muller on consecutive pairs of uniforms, both outputs used
//
// Slot 0: eps demand, growth, price, collateral; slot 1: eps rate, spread, U_regime,
// U_shock; slot FIRM_SLOT0 + c / 2: contract c's (U_renewal, U_default) in words
// (0, 1) if c is even, (2, 3) if odd (a counterparty's default uses its first contract's).
#pragma once
#include "common.cuh"
#include "gsmath.cuh"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u
#define FIRM_SLOT0 2u

struct Words { u32 w[4]; };

GPUSIM_HD void mulhilo32(u32 a, u32 b, u32* hi, u32* lo) {
  u64 product = (u64)a * (u64)b;
  *hi = (u32)(product >> 32);
  *lo = (u32)product;
}

GPUSIM_HD Words philox4x32(u32 c0, u32 c1, u32 c2, u32 c3, u32 k0, u32 k1) {
  GS_UNROLL_FULL for (int round = 0; round < 10; ++round) {
    u32 hi0, lo0, hi1, lo1;
    mulhilo32(PHILOX_M0, c0, &hi0, &lo0);
    mulhilo32(PHILOX_M1, c2, &hi1, &lo1);
    u32 n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  Words out = {{c0, c1, c2, c3}};
  return out;
}

GPUSIM_HD Words draw_words(u64 seed, u64 path, u32 month, u32 slot) {
  return philox4x32(slot, month, (u32)path, (u32)(path >> 32), (u32)seed, (u32)(seed >> 32));
}

// ((double)word + 0.5) * 2^-32, every step exact; written through a signed int (word − 2^31,
// + 2^31 + 0.5) because x86 has no vector unsigned-to-double conversion before AVX-512, so
// that the native build's loop over paths vectorizes. The same bits either way.
GPUSIM_HD double to_uniform(u32 word) {
  return ((double)(int)(word ^ 0x80000000u) + 2147483648.5) * 2.3283064365386963e-10;
}

// gs_log and gs_sincos (gsmath.cuh): the same arithmetic in every build.
GPUSIM_HD void box_muller(double u_a, double u_b, double* z_a, double* z_b) {
  double radius = sqrt(-2.0 * gs_log(u_a));
  double angle = 6.283185307179586 * u_b;
  double s, c;
  gs_sincos(angle, &s, &c);
  *z_a = radius * c;
  *z_b = radius * s;
}

// Independent normals eps[6] (FACTORS order) and uniforms (U_regime, U_shock) of one month.
GPUSIM_HD void market_draws(u64 seed, u64 path, u32 month, double eps[6], double uni[2]) {
  Words s0 = draw_words(seed, path, month, 0u);
  Words s1 = draw_words(seed, path, month, 1u);
  box_muller(to_uniform(s0.w[0]), to_uniform(s0.w[1]), &eps[0], &eps[1]);
  box_muller(to_uniform(s0.w[2]), to_uniform(s0.w[3]), &eps[2], &eps[3]);
  box_muller(to_uniform(s1.w[0]), to_uniform(s1.w[1]), &eps[4], &eps[5]);
  uni[0] = to_uniform(s1.w[2]);
  uni[1] = to_uniform(s1.w[3]);
}

// Every contract stream's block of one month, each drawn once: words[2c] is contract c's
// U_renewal word and words[2c + 1] its U_default word (block FIRM_SLOT0 + c / 2 holds
// contracts 2b and 2b + 1 in that order). A contract's renewal reads its own pair, a
// counterparty's default the pair of its first contract, so a block shared by two
// contracts, or read by several firms, is never drawn twice.
template <int CAP>
GPUSIM_HD void contract_words(u64 seed, u64 path, u32 month, int n_contracts,
                              u32 (&words)[2 * CAP]) {
  for (int b = 0; 2 * b < n_contracts; ++b) {
    Words w = draw_words(seed, path, month, FIRM_SLOT0 + (u32)b);
    words[4 * b] = w.w[0];
    words[4 * b + 1] = w.w[1];
    if (4 * b + 2 < 2 * CAP) {  // an odd CAP's last block has no second contract
      words[4 * b + 2] = w.w[2];
      words[4 * b + 3] = w.w[3];
    }
  }
}

// Contract c's (U_renewal, U_default) for one month (one block per call).
GPUSIM_HD void contract_draws(u64 seed, u64 path, u32 month, int c, double uni[2]) {
  Words w = draw_words(seed, path, month, FIRM_SLOT0 + (u32)(c / 2));
  int first = 2 * (c % 2);
  uni[0] = to_uniform(w.w[first]);
  uni[1] = to_uniform(w.w[first + 1]);
}
