// The double-precision log and sin/cos of Box–Muller, written out (fdlibm's algorithms
// and coefficients, error < 1 ulp) so that every build runs the same arithmetic: the
// host, native CPU and CUDA builds each otherwise call their own libm (glibc's sincos alone
// is ~130 x86 instructions a call, its log ~50). Branch-free but for data-independent
// selects, so a compiler can vectorize them over paths. The numpy reference keeps numpy's
// log and takes cos/sin of 2π·u from a table and short series (streams.cos_sin_turns, exact
// to 1.2e-16; fdlibm's of the rounded angle are within ~6e-16): a normal differs by at most
// ~1e-15 of its radius, far inside the 1e-9 agreement of the outputs.
#pragma once
#include "common.cuh"
#ifndef __CUDACC__
#include <string.h>
#endif

GPUSIM_HOT u64 gs_bits(double x) {
#ifdef __CUDA_ARCH__
  return (u64)__double_as_longlong(x);
#else
  u64 b;
  memcpy(&b, &x, sizeof b);
  return b;
#endif
}

GPUSIM_HOT double gs_from_bits(u64 b) {
#ifdef __CUDA_ARCH__
  return __longlong_as_double((long long)b);
#else
  double x;
  memcpy(&x, &b, sizeof x);
  return x;
#endif
}

// ln x for a normal x > 0 (fdlibm's __ieee754_log: x = 2^k·(1 + f), 1 + f in
// [√2/2, √2), log(1 + f) = f − hfsq + s·(hfsq + R(s²)), s = f / (2 + f)).
GPUSIM_HOT double gs_log(double x) {
  const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  const double Lg1 = 6.666666666666735130e-01, Lg2 = 3.999999999940941908e-01,
               Lg3 = 2.857142874366239149e-01, Lg4 = 2.222219843214978396e-01,
               Lg5 = 1.818357216161805012e-01, Lg6 = 1.531383769920937332e-01,
               Lg7 = 1.479819860511658591e-01;
  const u64 bits = gs_bits(x);
  const int hx = (int)(bits >> 32) & 0x000fffff;  // the high word's mantissa bits
  const int i = (hx + 0x95f64) & 0x100000;        // 1 + f >= √2: one more in the exponent
  const int k = (int)(bits >> 52) - 1023 + (i >> 20);
  const double m = gs_from_bits((bits & 0x000fffffffffffffull) |
                                ((u64)(0x3ff ^ (i >> 20)) << 52));  // 1 + f
  const double f = m - 1.0;
  const double s = f / (2.0 + f), dk = (double)k;
  const double z = s * s, w = z * z;
  const double t1 = w * (Lg2 + w * (Lg4 + w * Lg6));
  const double t2 = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
  const double r = t2 + t1;
  const double hfsq = 0.5 * f * f;
  const double big = dk * ln2_hi - ((hfsq - (s * (hfsq + r) + dk * ln2_lo)) - f);
  const double small = dk * ln2_hi - ((s * (f - r) - dk * ln2_lo) - f);
  return ((hx - 0x6147a) | (0x6b851 - hx)) > 0 ? big : small;
}

// sin and cos of x + y (y a tail below half an ulp of x), |x| <= π/4 (fdlibm's
// __kernel_sin and __kernel_cos).
GPUSIM_HOT void gs_kernel_sincos(double x, double y, double* sin_out, double* cos_out) {
  const double S1 = -1.66666666666666324348e-01, S2 = 8.33333333332248946124e-03,
               S3 = -1.98412698298579493134e-04, S4 = 2.75573137070700676789e-06,
               S5 = -2.50507602534068634195e-08, S6 = 1.58969099521155010221e-10;
  const double C1 = 4.16666666666666019037e-02, C2 = -1.38888888888741095749e-03,
               C3 = 2.48015872894767294178e-05, C4 = -2.75573143513906633035e-07,
               C5 = 2.08757232129817482790e-09, C6 = -1.13596475577881948265e-11;
  const double z = x * x, v = z * x;
  const double rs = S2 + z * (S3 + z * (S4 + z * (S5 + z * S6)));
  *sin_out = x - ((z * (0.5 * y - v * rs) - y) - v * S1);
  const double rc = z * (C1 + z * (C2 + z * (C3 + z * (C4 + z * (C5 + z * C6)))));
  const u64 ax = gs_bits(x) & 0x7fffffffffffffffull;
  const u32 ix = (u32)(ax >> 32);
  // |x| >= 0.3: cos = (1 − qx) − ((z/2 − qx) − (z·r − x·y)), qx ≈ x²/4 with few bits
  const double qx = ix > 0x3fe90000u ? 0.28125 : gs_from_bits((u64)(ix - 0x00200000u) << 32);
  const double near_zero = 1.0 - (0.5 * z - (z * rc - x * y));
  const double away = (1.0 - qx) - ((0.5 * z - qx) - (z * rc - x * y));
  *cos_out = ix < 0x3fd33333u ? near_zero : away;
}

// sin and cos of 0 <= x < 8 (Box–Muller's 2π·u): x − n·π/2 in three parts of π/2
// (fdlibm's __ieee754_rem_pio2, both steps), then the kernels and the quadrant n mod 4.
GPUSIM_HOT void gs_sincos(double x, double* sin_out, double* cos_out) {
  const double invpio2 = 6.36619772367581382433e-01;
  const double pio2_1 = 1.57079632673412561417e+00, pio2_2 = 6.07710050630396597660e-11,
               pio2_2t = 2.02226624879595063154e-21;
  const int n = (int)(x * invpio2 + 0.5);  // x >= 0: round to nearest
  const double fn = (double)n;
  const double t = x - fn * pio2_1;  // exact: fn·pio2_1 has 36 bits and is near x
  double w = fn * pio2_2;
  const double r = t - w;
  w = fn * pio2_2t - ((t - r) - w);
  const double y0 = r - w, y1 = (r - y0) - w;
  double s, c;
  gs_kernel_sincos(y0, y1, &s, &c);
  const int q = n & 3;
  *sin_out = q == 0 ? s : q == 1 ? c : q == 2 ? -s : -c;
  *cos_out = q == 0 ? c : q == 1 ? -s : q == 2 ? -c : s;
}
