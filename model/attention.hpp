// The one attention function of the model: scaled dot-product attention through LibTorch's fused
// kernel (at::_scaled_dot_product_attention on 1.13, at::scaled_dot_product_attention on 2.x), so
// training and generation share it and CUDA gets flash/memory-efficient kernels where it can.
// Pure function; any thread.
#pragma once

#include <torch/torch.h>

namespace torl::model {

// softmax(q k^T / sqrt(D) + mask) v.
//   q [B, H, T, D], k and v [B, H, S, D] (k/v already repeated to H heads), same dtype.
//   mask: undefined (attend everywhere), bool [B or 1, 1, T, S] (true = may attend), or the same
//         as an additive float mask in q's dtype (0 = may attend, -inf = not; see additive_mask,
//         which a caller runs once for all layers).
// Returns [B, H, T, D]. A row with no allowed key is the caller's to avoid (it would be NaN).
// bool mask (true = may attend) -> additive mask of `dtype`: 0 where allowed, -inf elsewhere.
torch::Tensor additive_mask(const torch::Tensor& mask, torch::ScalarType dtype);

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask);

}  // namespace torl::model
