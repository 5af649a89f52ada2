// CUDA SimAM kernels: the math of simam_cpu.h, one thread block per group of maps.
//
// Channels first: one block per map (blockDim (1, 256)), threads stride over its positions,
// so consecutive threads read consecutive addresses. Channels last: one block per sample and 32
// adjacent channels (blockDim (32, 8)); threadIdx.x picks the channel, so a warp reads 32
// contiguous values of one position, and threadIdx.y strides over positions. Either way a map's
// statistics are reduced over threadIdx.y in shared memory, in double. The backward computes the
// sigmoid twice per element instead of storing it: on a GPU the extra exp is cheaper than a
// full-size buffer. Plain expf/exp (not __expf): accurate to a couple of ulp.
#include <cuda_runtime.h>

#include "simam_kernels.h"

namespace simam {
namespace {

constexpr int kFirstThreads = 256;  // channels first: threads per map
constexpr int kLastLanes = 32;      // channels last: channels per block
constexpr int kLastRows = 8;        // channels last: positions read at once per channel

__device__ __forceinline__ float exp_dev(float a) { return expf(a); }
__device__ __forceinline__ double exp_dev(double a) { return exp(a); }

template <typename T>
__device__ __forceinline__ T sigmoid_dev(T t) {
  return T(1) / (T(1) + exp_dev(-t));
}

// The map this thread works on: element j of it is x[base + j * stride].
struct Map {
  int64_t base, stride;
  bool active;  // channels last: false for lanes past the last channel
};

__device__ __forceinline__ Map map_of(int64_t channels, int64_t positions, bool channels_last) {
  if (!channels_last) return {static_cast<int64_t>(blockIdx.x) * positions, 1, true};
  const int64_t c = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  return {static_cast<int64_t>(blockIdx.x) * positions * channels + c, channels, c < channels};
}

// Sums a and b over the threads of the block that share threadIdx.x; every such thread gets
// the totals. blockDim.y must be a power of two; red holds 2 * blockDim.x * blockDim.y doubles.
__device__ void reduce_rows(double& a, double& b, double* red) {
  const int nx = blockDim.x, tx = threadIdx.x, ty = threadIdx.y;
  double* ra = red;
  double* rb = red + nx * blockDim.y;
  ra[ty * nx + tx] = a;
  rb[ty * nx + tx] = b;
  __syncthreads();
  for (int s = blockDim.y / 2; s > 0; s >>= 1) {
    if (ty < s) {
      ra[ty * nx + tx] += ra[(ty + s) * nx + tx];
      rb[ty * nx + tx] += rb[(ty + s) * nx + tx];
    }
    __syncthreads();
  }
  a = ra[tx];
  b = rb[tx];
  __syncthreads();  // red is reused by the next call
}

// Mean and 1 / (4 (v + lambda)) of this thread's map; v := 0 for a single position.
template <typename T>
__device__ void map_stats(const T* x, const Map& m, int64_t positions, double e_lambda,
                          double* red, double* mu, double* inv) {
  double sum = 0.0, unused = 0.0;
  if (m.active) {
    for (int64_t j = threadIdx.y; j < positions; j += blockDim.y) {
      sum += static_cast<double>(x[m.base + j * m.stride]);
    }
  }
  reduce_rows(sum, unused, red);
  const double mean = sum / static_cast<double>(positions);
  double ssd = 0.0;
  unused = 0.0;
  if (m.active) {
    for (int64_t j = threadIdx.y; j < positions; j += blockDim.y) {
      const double c = static_cast<double>(x[m.base + j * m.stride]) - mean;
      ssd += c * c;
    }
  }
  reduce_rows(ssd, unused, red);
  const double v = positions > 1 ? ssd / static_cast<double>(positions - 1) : 0.0;
  *mu = mean;
  *inv = 1.0 / (4.0 * (v + e_lambda));
}

template <typename T>
__global__ void forward_kernel(const T* x, T* y, int64_t channels, int64_t positions,
                               bool channels_last, double e_lambda) {
  extern __shared__ double red[];
  const Map m = map_of(channels, positions, channels_last);
  double mu_d, inv_d;
  map_stats(x, m, positions, e_lambda, red, &mu_d, &inv_d);
  if (!m.active) return;
  const T mu = static_cast<T>(mu_d), inv = static_cast<T>(inv_d);
  const T mu_lo = static_cast<T>(mu_d - static_cast<double>(mu));  // see split_mean (CPU)
  for (int64_t j = threadIdx.y; j < positions; j += blockDim.y) {
    const int64_t i = m.base + j * m.stride;
    const T c = (x[i] - mu) - mu_lo;
    y[i] = x[i] * sigmoid_dev(c * c * inv + T(0.5));
  }
}

template <typename T>
__global__ void backward_kernel(const T* x, const T* g, T* gx, int64_t channels,
                                int64_t positions, bool channels_last, double e_lambda) {
  extern __shared__ double red[];
  const Map m = map_of(channels, positions, channels_last);
  double mu_d, inv_d;
  map_stats(x, m, positions, e_lambda, red, &mu_d, &inv_d);
  const T mu = static_cast<T>(mu_d), inv = static_cast<T>(inv_d);
  const T mu_lo = static_cast<T>(mu_d - static_cast<double>(mu));  // see split_mean (CPU)
  double sum_qc = 0.0, sum_qcc = 0.0;
  if (m.active) {
    for (int64_t j = threadIdx.y; j < positions; j += blockDim.y) {
      const int64_t i = m.base + j * m.stride;
      const T c = (x[i] - mu) - mu_lo;
      const T s = sigmoid_dev(c * c * inv + T(0.5));
      const T qc = g[i] * x[i] * s * (T(1) - s) * c;
      sum_qc += static_cast<double>(qc);
      sum_qcc += static_cast<double>(qc * c);
    }
  }
  reduce_rows(sum_qc, sum_qcc, red);
  if (!m.active) return;
  const T b = static_cast<T>(
      positions > 1 ? -4.0 * inv_d * inv_d * sum_qcc / static_cast<double>(positions - 1) : 0.0);
  const T shift = static_cast<T>(2.0 * inv_d * sum_qc / static_cast<double>(positions));
  for (int64_t j = threadIdx.y; j < positions; j += blockDim.y) {
    const int64_t i = m.base + j * m.stride;
    const T c = (x[i] - mu) - mu_lo;
    const T s = sigmoid_dev(c * c * inv + T(0.5));
    const T q = g[i] * x[i] * s * (T(1) - s);
    gx[i] = g[i] * s + T(2) * c * (q * inv + b) - shift;
  }
}

struct Launch {
  dim3 grid, block;
  size_t shared;
};

Launch launch_for(int64_t batch, int64_t channels, bool channels_last) {
  Launch l;
  if (!channels_last) {
    l.grid = dim3(static_cast<unsigned>(batch * channels));
    l.block = dim3(1, kFirstThreads);
  } else {
    l.grid = dim3(static_cast<unsigned>(batch),
                  static_cast<unsigned>((channels + kLastLanes - 1) / kLastLanes));
    l.block = dim3(kLastLanes, kLastRows);
  }
  l.shared = 2 * sizeof(double) * l.block.x * l.block.y;
  return l;
}

}  // namespace

template <typename T>
cudaError_t forward_cuda(const T* x, T* y, int64_t batch, int64_t channels, int64_t positions,
                         bool channels_last, double e_lambda, cudaStream_t stream) {
  if (batch * channels * positions == 0) return cudaSuccess;
  const Launch l = launch_for(batch, channels, channels_last);
  forward_kernel<T><<<l.grid, l.block, l.shared, stream>>>(x, y, channels, positions,
                                                           channels_last, e_lambda);
  return cudaGetLastError();
}

template <typename T>
cudaError_t backward_cuda(const T* x, const T* grad_y, T* grad_x, int64_t batch,
                          int64_t channels, int64_t positions, bool channels_last,
                          double e_lambda, cudaStream_t stream) {
  if (batch * channels * positions == 0) return cudaSuccess;
  const Launch l = launch_for(batch, channels, channels_last);
  backward_kernel<T><<<l.grid, l.block, l.shared, stream>>>(x, grad_y, grad_x, channels,
                                                            positions, channels_last, e_lambda);
  return cudaGetLastError();
}

template cudaError_t forward_cuda<float>(const float*, float*, int64_t, int64_t, int64_t, bool,
                                         double, cudaStream_t);
template cudaError_t forward_cuda<double>(const double*, double*, int64_t, int64_t, int64_t,
                                          bool, double, cudaStream_t);
template cudaError_t backward_cuda<float>(const float*, const float*, float*, int64_t, int64_t,
                                          int64_t, bool, double, cudaStream_t);
template cudaError_t backward_cuda<double>(const double*, const double*, double*, int64_t,
                                           int64_t, int64_t, bool, double, cudaStream_t);

}  // namespace simam
