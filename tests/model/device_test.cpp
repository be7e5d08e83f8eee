#include <doctest/doctest.h>

#include "model/device.hpp"

namespace torl::model {
namespace {

TEST_SUITE("model") {
  TEST_CASE("cpu always resolves; malformed names are refused") {
    const auto cpu = resolve_device("cpu");
    REQUIRE(cpu.ok());
    CHECK(cpu->is_cpu());
    for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "CPU"}) {
      const auto device = resolve_device(bad);
      CHECK_MESSAGE(device.status().code() == StatusCode::kInvalidArgument, bad);
    }
  }

  TEST_CASE("a CUDA device resolves only where one is visible") {
    const auto device = resolve_device("cuda:0");
    if (torch::cuda::is_available()) {
      REQUIRE(device.ok());
      CHECK(device->is_cuda());
      CHECK(resolve_device("cuda:4096").status().code() == StatusCode::kUnavailable);
    } else {
      CHECK(device.status().code() == StatusCode::kUnavailable);
      CHECK(device.status().message().find("set model.device: cpu") != std::string::npos);
    }
  }

  TEST_CASE("config dtypes map to LibTorch scalar types") {
    CHECK((scalar_type(config::DType::kFloat32) == torch::kFloat32));
    CHECK((scalar_type(config::DType::kBFloat16) == torch::kBFloat16));
    CHECK((scalar_type(config::DType::kFloat16) == torch::kFloat16));
    const auto x = torch::ones({2, 3}, torch::dtype(scalar_type(config::DType::kBFloat16)));
    CHECK(x.sum().item<float>() == 6.0f);
  }
}

}  // namespace
}  // namespace torl::model
