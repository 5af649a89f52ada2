// Launchers of the CUDA SimAM kernels (simam_op.cu), over raw pointers so that the .cu file
// needs no Paddle header and compiles on its own with nvcc.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace simam {

// x, y, grad_y, grad_x: contiguous [outer, positions] (channels first, outer = N*C) or
// [batch, positions, channels] (channels last). T is float or double.
template <typename T>
cudaError_t forward_cuda(const T* x, T* y, int64_t batch, int64_t channels, int64_t positions,
                         bool channels_last, double e_lambda, cudaStream_t stream);

template <typename T>
cudaError_t backward_cuda(const T* x, const T* grad_y, T* grad_x, int64_t batch,
                          int64_t channels, int64_t positions, bool channels_last,
                          double e_lambda, cudaStream_t stream);

}  // namespace simam
