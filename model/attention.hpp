// The one attention function of the model: LibTorch's scaled_dot_product_attention (fused kernels on
// CPU and CUDA, grouped-query attention without copying keys and values to every head), so training
// and generation share it. Pure function; any thread.
#pragma once

#include <torch/torch.h>

namespace torl::model {

// bool mask (true = may attend) -> additive mask of `dtype`: 0 where allowed, -inf elsewhere.
torch::Tensor additive_mask(const torch::Tensor& mask, torch::ScalarType dtype);

// softmax(q k^T / sqrt(D) + mask) v.
//   q [B, H, T, D], k and v [B, K, S, D] with K dividing H (query head h reads key/value head
//   h / (H / K), as HF's repeat_kv), same dtype.
//   mask: undefined (attend everywhere), bool [B or 1, 1, T, S] (true = may attend), or the same
//         as an additive float mask in q's dtype (0 = may attend, -inf = not; see additive_mask,
//         which a caller runs once for all layers).
// Returns [B, H, T, D]. A row with no allowed key is the caller's to avoid (it would be NaN).
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask);

}  // namespace torl::model
