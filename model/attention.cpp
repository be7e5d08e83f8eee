#include "model/attention.hpp"

#include <torch/version.h>

#include <limits>

namespace torl::model {

torch::Tensor additive_mask(const torch::Tensor& mask, torch::ScalarType dtype) {
  return torch::zeros(mask.sizes(), mask.options().dtype(dtype))
      .masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask) {
  // An additive float mask means the same on 1.13 and 2.x (the meaning of a bool mask changed
  // between them).
  c10::optional<torch::Tensor> additive;
  if (mask.defined()) {
    additive = mask.scalar_type() == torch::kBool ? additive_mask(mask, q.scalar_type()) : mask;
  }
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, additive, /*dropout_p=*/0.0,
                                          /*is_causal=*/false);
#else
  return std::get<0>(at::_scaled_dot_product_attention(q, k, v, additive, /*dropout_p=*/0.0,
                                                       /*need_attn_weights=*/false,
                                                       /*is_causal=*/false));
#endif
}

}  // namespace torl::model
