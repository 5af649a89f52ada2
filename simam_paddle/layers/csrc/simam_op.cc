// SimAM as one Paddle custom operator: forward and analytic backward in a few passes over each
// map, statistics in double, the backward keeping only the input. CPU: OpenMP over maps, loops
// written for the compiler's auto-vectoriser (see exp_nonpositive); CUDA: simam_op.cu.
// The math is written out in simam_cpu.h.

#include <algorithm>
#include <cstdint>
#include <vector>

// The operator API without paddle/extension.h's PIR pass headers, which this file does not use
// and which more than double the compile time of the first use.
#include "paddle/common/exception.h"
#include "paddle/phi/api/all.h"
#include "simam_cpu.h"

#ifdef PADDLE_WITH_CUDA
#include "simam_kernels.h"
#endif

namespace {

struct Geometry {
  int64_t batch, channels, positions;
};

Geometry geometry(const paddle::Tensor& x, bool channels_last) {
  const std::vector<int64_t> shape = x.shape();
  PD_CHECK(shape.size() >= 3,
           "simam_fused expects a tensor of rank >= 3, (N, C, spatial...) or channels last, ",
           "got rank ",
           shape.size(), ".");
  Geometry g{shape[0], channels_last ? shape.back() : shape[1], 1};
  for (size_t i = 1; i < shape.size(); ++i) {
    if (i != (channels_last ? shape.size() - 1 : 1)) g.positions *= shape[i];
  }
  return g;
}

// Kernels index raw memory, so views with strides are copied first (a no-op when contiguous).
paddle::Tensor dense(const paddle::Tensor& t) { return t.is_contiguous() ? t : t.contiguous(); }

}  // namespace

std::vector<paddle::Tensor> SimamForward(const paddle::Tensor& x_in, double e_lambda,
                                         bool channels_last, int num_threads) {
  const paddle::Tensor x = dense(x_in);
  const Geometry geo = geometry(x, channels_last);
  paddle::Tensor y = paddle::empty(x.shape(), x.dtype(), x.place());
  if (x.numel() == 0) return {y};
  if (x.is_gpu()) {
#ifdef PADDLE_WITH_CUDA
    PD_DISPATCH_FLOATING_TYPES(x.type(), "simam_fused_cuda", ([&] {
      const cudaError_t err = simam::forward_cuda<data_t>(
          x.data<data_t>(), y.data<data_t>(), geo.batch, geo.channels, geo.positions,
          channels_last, e_lambda, x.stream());
      PD_CHECK(err == cudaSuccess, "simam_fused CUDA forward failed: ", cudaGetErrorString(err));
    }));
    return {y};
#else
    PD_THROW("simam_fused was built without CUDA; rebuild it with a CUDA build of Paddle.");
#endif
  }
  PD_CHECK(x.is_cpu(), "simam_fused runs on CPU or CUDA tensors only.");
  PD_DISPATCH_FLOATING_TYPES(x.type(), "simam_fused", ([&] {
    simam::forward_cpu<data_t>(x.data<data_t>(), y.data<data_t>(), geo.batch, geo.channels,
                               geo.positions, channels_last, e_lambda, std::max(num_threads, 1));
  }));
  return {y};
}

std::vector<paddle::Tensor> SimamBackward(const paddle::Tensor& x_in,
                                          const paddle::Tensor& grad_out_in, double e_lambda,
                                          bool channels_last, int num_threads) {
  const paddle::Tensor x = dense(x_in), grad_out = dense(grad_out_in);
  const Geometry geo = geometry(x, channels_last);
  paddle::Tensor grad_x = paddle::empty(x.shape(), x.dtype(), x.place());
  if (x.numel() == 0) return {grad_x};
  if (x.is_gpu()) {
#ifdef PADDLE_WITH_CUDA
    PD_DISPATCH_FLOATING_TYPES(x.type(), "simam_fused_grad_cuda", ([&] {
      const cudaError_t err = simam::backward_cuda<data_t>(
          x.data<data_t>(), grad_out.data<data_t>(), grad_x.data<data_t>(), geo.batch,
          geo.channels, geo.positions, channels_last, e_lambda, x.stream());
      PD_CHECK(err == cudaSuccess, "simam_fused CUDA backward failed: ", cudaGetErrorString(err));
    }));
    return {grad_x};
#else
    PD_THROW("simam_fused was built without CUDA; rebuild it with a CUDA build of Paddle.");
#endif
  }
  PD_CHECK(x.is_cpu(), "simam_fused runs on CPU or CUDA tensors only.");
  PD_DISPATCH_FLOATING_TYPES(x.type(), "simam_fused_grad", ([&] {
    simam::backward_cpu<data_t>(x.data<data_t>(), grad_out.data<data_t>(), grad_x.data<data_t>(),
                                geo.batch, geo.channels, geo.positions, channels_last, e_lambda,
                                std::max(num_threads, 1));
  }));
  return {grad_x};
}

std::vector<std::vector<int64_t>> SimamInferShape(const std::vector<int64_t>& x_shape) {
  return {x_shape};
}

std::vector<paddle::DataType> SimamInferDtype(const paddle::DataType& x_dtype) {
  return {x_dtype};
}

PD_BUILD_OP(simam_fused)
    .Inputs({"X"})
    .Outputs({"Out"})
    .Attrs({"e_lambda: double", "channels_last: bool", "num_threads: int"})
    .SetKernelFn(PD_KERNEL(SimamForward))
    .SetInferShapeFn(PD_INFER_SHAPE(SimamInferShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(SimamInferDtype));

PD_BUILD_GRAD_OP(simam_fused)
    .Inputs({"X", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X")})
    .Attrs({"e_lambda: double", "channels_last: bool", "num_threads: int"})
    .SetKernelFn(PD_KERNEL(SimamBackward));
