#include "model/attention.hpp"

#include <limits>
#include <optional>

namespace torl::model {

torch::Tensor additive_mask(const torch::Tensor& mask, torch::ScalarType dtype) {
  return torch::zeros(mask.sizes(), mask.options().dtype(dtype))
      .masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask) {
  std::optional<torch::Tensor> additive;
  if (mask.defined()) {
    additive = mask.scalar_type() == torch::kBool ? additive_mask(mask, q.scalar_type()) : mask;
  }
  return at::scaled_dot_product_attention(q, k, v, additive, /*dropout_p=*/0.0, /*is_causal=*/false,
                                          /*scale=*/std::nullopt, /*enable_gqa=*/k.size(1) != q.size(1));
}

}  // namespace torl::model
