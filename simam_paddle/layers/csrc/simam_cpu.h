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
// Channels last: at most this many adjacent channels are handled together (per-channel
// accumulators live on the stack). Whole rows stream best (measured: 256 channels at once are
// about 1.5x faster than tiles of 32, whose strided rows defeat the prefetcher).
constexpr int64_t kTile = 256;

// Channels per tile: whole rows up to kTile, split further only when the batch alone gives
// fewer tiles than threads (rounded to 8 channels, a 32-byte vector of floats).
inline int64_t tile_width(int64_t batch, int64_t channels, int num_threads) {
  int64_t width = std::min(channels, kTile);
  const int64_t per_sample = (num_threads + batch - 1) / batch;
  if (per_sample > 1) {
    const int64_t split = ((channels + per_sample - 1) / per_sample + 7) / 8 * 8;
    width = std::min(width, std::max<int64_t>(split, 8));
  }
  return width;
}

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
    const int64_t width = tile_width(batch, C, parallel ? num_threads : 1);
    const int64_t tiles = (C + width - 1) / width;
#pragma omp parallel for num_threads(num_threads) if (parallel) schedule(static)
    for (int64_t t = 0; t < batch * tiles; ++t) {
      const int64_t n = t / tiles, c0 = (t % tiles) * width;
      const int64_t offset = n * P * C + c0;
      k.forward_tile(x + offset, y + offset, P, C, std::min(width, C - c0), e_lambda);
    }
  }
}

template <typename T>
void backward_cpu(const T* x, const T* g, T* gx, int64_t batch, int64_t channels,
                  int64_t positions, bool channels_last, double e_lambda, int num_threads) {
  const Kernels<T>& k = kernels<T>();
  const int64_t P = positions, C = channels;
  const bool parallel = num_threads > 1 && batch * C * P >= kSerialBelow;
  const int64_t width = channels_last ? tile_width(batch, C, parallel ? num_threads : 1) : 1;
#pragma omp parallel num_threads(num_threads) if (parallel)
  {
    std::vector<T> s_buf(P * width);
    if (!channels_last) {
      const int64_t planes = batch * C;
#pragma omp for schedule(static)
      for (int64_t i = 0; i < planes; ++i) {
        k.backward_plane(x + i * P, g + i * P, gx + i * P, s_buf.data(), P, e_lambda);
      }
    } else {
      const int64_t tiles = (C + width - 1) / width;
#pragma omp for schedule(static)
      for (int64_t t = 0; t < batch * tiles; ++t) {
        const int64_t n = t / tiles, c0 = (t % tiles) * width;
        const int64_t offset = n * P * C + c0;
        k.backward_tile(x + offset, g + offset, gx + offset, s_buf.data(), P, C,
                        std::min(width, C - c0), e_lambda);
      }
    }
  }
}

}  // namespace simam
