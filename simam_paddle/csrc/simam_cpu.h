// CPU SimAM kernels over raw contiguous memory, free of Paddle headers (the operator glue is in
// simam_op.cc), so they can be compiled and timed on their own.
//
// Per sample and channel over the n spatial positions: mu = mean(x), c = x - mu,
// v = sum(c^2) / (n - 1) (v := 0 when n == 1), inv = 1 / (4 (v + lambda)),
// t = c^2 inv + 1/2, s = sigmoid(t), y = x s.
// Backward with upstream g, q = dL/dt = g x s (1 - s):
//   dL/dx_j = g_j s_j + 2 c_j (q_j inv + B) - (2 inv / n) sum_i q_i c_i,
//   B = dL/dv / (n - 1) = -4 inv^2 sum_i q_i c_i^2 / (n - 1)   (B := 0 when n == 1).
// The last term is the mean's share; the B part of it vanishes because sum_i c_i == 0.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace simam {

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kSerialBelow = 1 << 15;
// Channels handled together in channels-last layout: one row of a tile is 128 contiguous bytes
// (float), long enough to vectorise and short enough for per-channel accumulators on the stack.
constexpr int64_t kTile = 32;

}  // namespace simam

// The kernels twice: for the baseline ISA (portable cache, no -march=native) and, on x86-64 with
// GCC or Clang, for AVX2+FMA; kernels<T>() picks one once per process from the running CPU.
#define SIMAM_ISA base
#include "simam_cpu_kernels.inc"
#undef SIMAM_ISA

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SIMAM_HAVE_AVX2 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define SIMAM_ISA avx2
#include "simam_cpu_kernels.inc"
#undef SIMAM_ISA
#pragma GCC pop_options
#endif

namespace simam {

template <typename T>
struct Kernels {
  void (*forward_plane)(const T*, T*, int64_t, double);
  void (*backward_plane)(const T*, const T*, T*, T*, int64_t, double);
  void (*forward_tile)(const T*, T*, int64_t, int64_t, int64_t, double);
  void (*backward_tile)(const T*, const T*, T*, T*, int64_t, int64_t, int64_t, double);
};

template <typename T>
const Kernels<T>& kernels() {
  static const Kernels<T> base_set{base::forward_plane<T>, base::backward_plane<T>,
                                   base::forward_tile<T>, base::backward_tile<T>};
#ifdef SIMAM_HAVE_AVX2
  static const Kernels<T> avx2_set{avx2::forward_plane<T>, avx2::backward_plane<T>,
                                   avx2::forward_tile<T>, avx2::backward_tile<T>};
  static const bool use_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return use_avx2 ? avx2_set : base_set;
#else
  return base_set;
#endif
}

// Drivers: OpenMP over maps (channels first) or channel tiles (channels last); num_threads >= 1.
template <typename T>
void forward_cpu(const T* x, T* y, int64_t batch, int64_t channels, int64_t positions,
                 bool channels_last, double e_lambda, int num_threads) {
  const Kernels<T>& k = kernels<T>();
  const int64_t P = positions, C = channels;
  const bool parallel = num_threads > 1 && batch * C * P >= kSerialBelow;
  if (!channels_last) {
    const int64_t planes = batch * C;
#pragma omp parallel for num_threads(num_threads) if (parallel) schedule(static)
    for (int64_t i = 0; i < planes; ++i) k.forward_plane(x + i * P, y + i * P, P, e_lambda);
  } else {
    const int64_t tiles = (C + kTile - 1) / kTile;
#pragma omp parallel for num_threads(num_threads) if (parallel) schedule(static)
    for (int64_t t = 0; t < batch * tiles; ++t) {
      const int64_t n = t / tiles, c0 = (t % tiles) * kTile;
      const int64_t offset = n * P * C + c0;
      k.forward_tile(x + offset, y + offset, P, C, std::min(kTile, C - c0), e_lambda);
    }
  }
}

template <typename T>
void backward_cpu(const T* x, const T* g, T* gx, int64_t batch, int64_t channels,
                  int64_t positions, bool channels_last, double e_lambda, int num_threads) {
  const Kernels<T>& k = kernels<T>();
  const int64_t P = positions, C = channels;
  const bool parallel = num_threads > 1 && batch * C * P >= kSerialBelow;
#pragma omp parallel num_threads(num_threads) if (parallel)
  {
    std::vector<T> s_buf(channels_last ? P * std::min(kTile, C) : P);
    if (!channels_last) {
      const int64_t planes = batch * C;
#pragma omp for schedule(static)
      for (int64_t i = 0; i < planes; ++i) {
        k.backward_plane(x + i * P, g + i * P, gx + i * P, s_buf.data(), P, e_lambda);
      }
    } else {
      const int64_t tiles = (C + kTile - 1) / kTile;
#pragma omp for schedule(static)
      for (int64_t t = 0; t < batch * tiles; ++t) {
        const int64_t n = t / tiles, c0 = (t % tiles) * kTile;
        const int64_t offset = n * P * C + c0;
        k.backward_tile(x + offset, g + offset, gx + offset, s_buf.data(), P, C,
                      std::min(kTile, C - c0), e_lambda);
      }
    }
  }
}

}  // namespace simam
