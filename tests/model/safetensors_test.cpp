// LibTorch first: it pulls in glog, whose CHECK would otherwise replace doctest's (and abort).
#include "model/safetensors.hpp"

#include <cstring>
#include <fstream>
#include <sstream>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "tests/temp_dir.hpp"

namespace torl::model {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// A file of the shared tiny-qwen2 fixtures; fails the test with a hint when they are missing.
fs::path fixture(const std::string& name) {
  const fs::path path = fs::path(TORL_SOURCE_DIR) / ".." / "shared" / "fixtures" / "tiny-qwen2" / name;
  REQUIRE_MESSAGE(fs::exists(path), "shared fixture missing: " << path.string()
                                                                 << " (the fixtures live in ../shared next to the source tree)");
  return path;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// A raw file: 8-byte little-endian length, `header` as given, then `data`.
std::string raw_file(const std::string& header, const std::string& data) {
  std::string bytes(8, '\0');
  const uint64_t size = header.size();
  std::memcpy(bytes.data(), &size, 8);
  return bytes + header + data;
}

// The error message of reading `bytes` as a safetensors file; "" when it reads fine.
std::string read_error(const TempDir& dir, const std::string& bytes) {
  const auto file = dir.write("bad.safetensors", bytes);
  const auto tensors = read_safetensors(file);
  return tensors.ok() ? "" : tensors.status().message();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST_SUITE("model") {
  TEST_CASE("the tiny Qwen2 checkpoint reads with its names, shapes and values") {
    const auto tensors = read_safetensors(fixture("model.safetensors"));
    REQUIRE_MESSAGE(tensors.ok(), tensors.status().message());
    CHECK(tensors->size() == 27);  // 28 header entries, one of them __metadata__
    CHECK(tensors->count("__metadata__") == 0);
    const auto& embed = tensors->at("model.embed_tokens.weight");
    CHECK((embed.sizes().vec() == std::vector<int64_t>{1024, 64}));
    CHECK((embed.scalar_type() == torch::kFloat32));
    CHECK(embed.device().is_cpu());
    // Values read with Python's struct module from the same file.
    CHECK(embed[0][0].item<float>() == doctest::Approx(0.03251943364739418).epsilon(1e-7));
    CHECK(embed[0][6].item<float>() == doctest::Approx(0.18920859694480896).epsilon(1e-7));
    const auto& norm = tensors->at("model.norm.weight");
    CHECK((norm.sizes().vec() == std::vector<int64_t>{64}));
    CHECK(norm[2].item<float>() == doctest::Approx(1.1351289749145508).epsilon(1e-7));
    CHECK((tensors->at("model.layers.1.mlp.down_proj.weight").sizes().vec() == std::vector<int64_t>{64, 176}));
  }

  TEST_CASE("the reference file reads its I64, F64 and F32 entries") {
    const auto tensors = read_safetensors(fixture("reference.safetensors"));
    REQUIRE_MESSAGE(tensors.ok(), tensors.status().message());
    CHECK(tensors->size() == 9);
    const auto& ids = tensors->at("input_ids");
    CHECK((ids.scalar_type() == torch::kInt64));
    CHECK((ids.sizes().vec() == std::vector<int64_t>{3, 12}));
    CHECK(ids[0][0].item<int64_t>() == 618);
    CHECK(ids[1][0].item<int64_t>() == 0);  // row 1 is left-padded
    const auto& logits64 = tensors->at("logits64");
    CHECK((logits64.scalar_type() == torch::kFloat64));
    CHECK((logits64.sizes().vec() == std::vector<int64_t>{3, 12, 1024}));
    CHECK(logits64[0][0][2].item<double>() == 1.2825644588389429);
    const auto& logprobs = tensors->at("token_logprobs");
    CHECK((logprobs.sizes().vec() == std::vector<int64_t>{3, 11}));
    CHECK(logprobs[0][0].item<double>() == -8.022334104972359);
    const auto& logits = tensors->at("logits");
    CHECK((logits.scalar_type() == torch::kFloat32));
    CHECK((logits.sizes().vec() == std::vector<int64_t>{3, 12, 1024}));
    CHECK(torch::allclose(logits.to(torch::kFloat64), logits64, 1e-4, 1e-4));
  }

  TEST_CASE("tensors stay valid after the map that returned them is gone") {
    torch::Tensor norm;
    {
      auto tensors = read_safetensors(fixture("model.safetensors"));
      REQUIRE(tensors.ok());
      norm = tensors->at("model.norm.weight");
    }
    CHECK(norm[0].item<float>() == doctest::Approx(0.9610614776611328).epsilon(1e-7));
    CHECK(norm.sum().item<float>() > 0.0f);
  }

  TEST_CASE("a read checkpoint folder with model.safetensors returns all its tensors") {
    const auto tensors = read_checkpoint(fixture("model.safetensors").parent_path());
    REQUIRE_MESSAGE(tensors.ok(), tensors.status().message());
    CHECK(tensors->size() == 27);
    CHECK(tensors->count("lm_head.weight") == 1);
  }

  TEST_CASE("saving then loading is bit-exact for every supported dtype and layout") {
    torch::manual_seed(7);
    TensorMap tensors;
    tensors["f32"] = torch::randn({3, 5});
    tensors["f16"] = torch::randn({4, 2}).to(torch::kFloat16);
    tensors["bf16"] = torch::randn({7}).to(torch::kBFloat16);
    tensors["f64"] = torch::randn({2, 2, 2}, torch::kFloat64);
    tensors["i64"] = torch::tensor({int64_t{-1}, INT64_MAX, INT64_MIN, int64_t{0}});
    tensors["i32"] = torch::randint(-1000, 1000, {6}, torch::kInt32);
    tensors["i16"] = torch::randint(-1000, 1000, {3}, torch::kInt16);
    tensors["i8"] = torch::randint(-128, 127, {5}, torch::kInt8);
    tensors["u8"] = torch::randint(0, 255, {9}, torch::kUInt8);
    tensors["bool"] = torch::tensor({true, false, true});
    tensors["scalar"] = torch::tensor(3.5);
    tensors["empty"] = torch::empty({0, 3});
    tensors["transposed"] = torch::arange(12, torch::kFloat32).reshape({3, 4}).t();  // not contiguous
    TempDir dir;
    const auto file = dir.path() / "all.safetensors";
    const Status written = write_safetensors(file, tensors);
    REQUIRE_MESSAGE(written.ok(), written.message());
    const auto loaded = read_safetensors(file);
    REQUIRE_MESSAGE(loaded.ok(), loaded.status().message());
    REQUIRE(loaded->size() == tensors.size());
    for (const auto& [name, tensor] : tensors) {
      REQUIRE_MESSAGE(loaded->count(name) == 1, name);
      const auto& back = loaded->at(name);
      CHECK_MESSAGE((back.scalar_type() == tensor.scalar_type()), name);
      CHECK_MESSAGE((back.sizes().vec() == tensor.sizes().vec()), name);
      CHECK_MESSAGE(torch::equal(back, tensor), name);
    }
  }

  TEST_CASE("a written file has a padded, sorted JSON header and contiguous, aligned data offsets") {
    TensorMap tensors;
    tensors["b.weight"] = torch::ones({3}, torch::kFloat16);  // 6 bytes: odd sizes still pack tightly
    tensors["a.bias"] = torch::zeros({2, 3}, torch::kInt64);
    tensors["c"] = torch::tensor({true});
    TempDir dir;
    const auto file = dir.path() / "out.safetensors";
    REQUIRE(write_safetensors(file, tensors, {{"format", "pt"}, {"step", "12"}}).ok());

    const std::string bytes = read_bytes(file);
    REQUIRE(bytes.size() >= 8);
    uint64_t header_size = 0;
    std::memcpy(&header_size, bytes.data(), 8);
    CHECK(header_size % 8 == 0);
    REQUIRE(8 + header_size <= bytes.size());
    const std::string header_text = bytes.substr(8, header_size);
    const auto header = nlohmann::json::parse(header_text);  // trailing padding is whitespace
    REQUIRE(header.is_object());
    CHECK(header["__metadata__"] == nlohmann::json({{"format", "pt"}, {"step", "12"}}));

    // Names appear in sorted order in the text, and their data follows in that order without gaps.
    const auto pos_a = header_text.find("\"a.bias\"");
    const auto pos_b = header_text.find("\"b.weight\"");
    const auto pos_c = header_text.find("\"c\"");
    REQUIRE(pos_a != std::string::npos);
    REQUIRE(pos_b != std::string::npos);
    REQUIRE(pos_c != std::string::npos);
    CHECK(pos_a < pos_b);
    CHECK(pos_b < pos_c);
    CHECK(header["a.bias"]["dtype"] == "I64");
    CHECK(header["a.bias"]["shape"] == nlohmann::json({2, 3}));
    CHECK(header["a.bias"]["data_offsets"] == nlohmann::json({0, 48}));
    CHECK(header["b.weight"]["dtype"] == "F16");
    CHECK(header["b.weight"]["data_offsets"] == nlohmann::json({48, 54}));
    CHECK(header["c"]["dtype"] == "BOOL");
    CHECK(header["c"]["data_offsets"] == nlohmann::json({54, 55}));
    CHECK(bytes.size() == 8 + header_size + 55);

    // Larger elements come first in the data, so every tensor is aligned to its element size.
    REQUIRE(write_safetensors(file, {{"a", torch::ones({3}, torch::kFloat16)}, {"b", torch::ones({1}, torch::kFloat64)}}).ok());
    const std::string aligned = read_bytes(file);
    std::memcpy(&header_size, aligned.data(), 8);
    const auto aligned_header = nlohmann::json::parse(aligned.substr(8, header_size));
    CHECK(aligned_header["b"]["data_offsets"] == nlohmann::json({0, 8}));
    CHECK(aligned_header["a"]["data_offsets"] == nlohmann::json({8, 14}));

    // No temporary file is left behind.
    int files = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir.path())) ++files;
    CHECK(files == 1);
  }

  TEST_CASE("writing over an existing file replaces it") {
    TempDir dir;
    const auto file = dir.path() / "w.safetensors";
    REQUIRE(write_safetensors(file, {{"x", torch::ones({4})}}).ok());
    REQUIRE(write_safetensors(file, {{"y", torch::full({2}, 5, torch::kInt32)}}).ok());
    const auto loaded = read_safetensors(file);
    REQUIRE(loaded.ok());
    CHECK(loaded->count("x") == 0);
    REQUIRE(loaded->count("y") == 1);
    CHECK(torch::equal(loaded->at("y"), torch::full({2}, 5, torch::kInt32)));
  }

  TEST_CASE("writing an unsupported dtype or into a missing folder fails with the reason") {
    TempDir dir;
    const Status complex =
        write_safetensors(dir.path() / "c.safetensors", {{"z", torch::zeros({2}, torch::kComplexFloat)}});
    REQUIRE_FALSE(complex.ok());
    CHECK(contains(complex.message(), "tensor 'z': unsupported dtype"));
    const Status missing = write_safetensors(dir.path() / "no" / "such" / "x.safetensors", {{"a", torch::ones({1})}});
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.code() == StatusCode::kIoError);
    CHECK(contains(missing.message(), "x.safetensors"));
  }

  TEST_CASE("a truncated file is refused with the file named") {
    TempDir dir;
    const std::string message = read_error(dir, "abc");
    CHECK(contains(message, "bad.safetensors"));
    CHECK(contains(message, "truncated file: 3 bytes"));
    CHECK(contains(read_error(dir, ""), "truncated file: 0 bytes"));
  }

  TEST_CASE("a header length past the end of the file is refused") {
    TempDir dir;
    std::string bytes = raw_file("{}", "");
    const uint64_t huge = 1000;
    std::memcpy(bytes.data(), &huge, 8);
    const std::string message = read_error(dir, bytes);
    CHECK(contains(message, "header length 1000 runs past the end of the file (10 bytes)"));
  }

  TEST_CASE("a header that is not JSON, or not an object, is refused") {
    TempDir dir;
    const std::string not_json = read_error(dir, raw_file("{\"a\": ", ""));
    CHECK(contains(not_json, "bad.safetensors"));
    CHECK(contains(not_json, "header: invalid JSON"));
    CHECK(contains(read_error(dir, raw_file("[1, 2]", "")), "header: expected a JSON object (got array)"));
  }

  TEST_CASE("offsets that do not match the shape name the tensor and the expected size") {
    TempDir dir;
    const std::string header =
        R"({"lm_head.weight": {"dtype": "F32", "shape": [4, 8], "data_offsets": [0, 100]}})";
    const std::string message = read_error(dir, raw_file(header, std::string(128, '\0')));
    CHECK(contains(message, "bad.safetensors': tensor 'lm_head.weight': data_offsets [0, 100] do not "
                            "match F32 [4, 8] (128 bytes)"));
  }

  TEST_CASE("offsets past the data area (a truncated data section) are refused") {
    TempDir dir;
    const std::string header = R"({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})";
    const std::string message = read_error(dir, raw_file(header, std::string(10, '\0')));
    CHECK(contains(message, "tensor 'x': data_offsets [0, 16] lie outside the data area (10 bytes)"));
  }

  TEST_CASE("an unsupported dtype is named with the supported ones") {
    TempDir dir;
    const std::string header = R"({"w": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}})";
    const std::string message = read_error(dir, raw_file(header, "ab"));
    CHECK(contains(message, "tensor 'w': unsupported dtype 'F8_E4M3'"));
    CHECK(contains(message, "BF16"));
  }

  TEST_CASE("overlapping tensors and malformed entries are refused") {
    TempDir dir;
    const std::string overlap =
        R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},)"
        R"( "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}})";
    CHECK(contains(read_error(dir, raw_file(overlap, "abcdef")), "tensors 'a' and 'b' overlap"));
    const std::string no_shape = R"({"a": {"dtype": "U8", "data_offsets": [0, 4]}})";
    CHECK(contains(read_error(dir, raw_file(no_shape, "abcd")), "tensor 'a': field 'shape'"));
    const std::string no_dtype = R"({"a": {"shape": [4], "data_offsets": [0, 4]}})";
    CHECK(contains(read_error(dir, raw_file(no_dtype, "abcd")), "tensor 'a': missing field 'dtype'"));
    const std::string bad_offsets = R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0]}})";
    CHECK(contains(read_error(dir, raw_file(bad_offsets, "abcd")), "tensor 'a': field 'data_offsets'"));
    const std::string negative = R"({"a": {"dtype": "U8", "shape": [-4], "data_offsets": [0, 4]}})";
    CHECK(contains(read_error(dir, raw_file(negative, "abcd")), "non-negative"));
    const std::string huge =
        R"({"a": {"dtype": "F64", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}})";
    CHECK(contains(read_error(dir, raw_file(huge, "abcd")), "more bytes than the file holds"));
  }

  TEST_CASE("metadata is skipped and unaligned data is still read correctly") {
    TempDir dir;
    // Header padding that leaves the F32 data unaligned in memory.
    std::string header =
        R"({"__metadata__": {"format": "pt"}, "x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})";
    std::string data(8, '\0');
    const float values[2] = {1.5f, -2.25f};
    std::memcpy(data.data(), values, 8);
    while ((8 + header.size()) % 4 != 1) header += ' ';
    const auto file = dir.write("ok.safetensors", raw_file(header, data));
    const auto tensors = read_safetensors(file);
    REQUIRE_MESSAGE(tensors.ok(), tensors.status().message());
    CHECK(tensors->size() == 1);
    CHECK((torch::equal(tensors->at("x"), torch::tensor({1.5f, -2.25f}))));
  }

  TEST_CASE("a missing file is not found") {
    const auto tensors = read_safetensors("/nonexistent/model.safetensors");
    CHECK(tensors.status().code() == StatusCode::kNotFound);
    CHECK(contains(tensors.status().message(), "reading '/nonexistent/model.safetensors'"));
  }

  TEST_CASE("a sharded checkpoint reads every shard named by its index") {
    TempDir dir;
    REQUIRE(write_safetensors(dir.path() / "model-00001-of-00002.safetensors",
                              {{"a", torch::ones({2})}, {"b", torch::zeros({3}, torch::kInt64)}})
                .ok());
    REQUIRE(write_safetensors(dir.path() / "model-00002-of-00002.safetensors", {{"c", torch::ones({1, 1})}}).ok());
    dir.write("model.safetensors.index.json",
              R"({"metadata": {"total_size": 36}, "weight_map": {"a": "model-00001-of-00002.safetensors",)"
              R"( "b": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}})");
    const auto tensors = read_checkpoint(dir.path());
    REQUIRE_MESSAGE(tensors.ok(), tensors.status().message());
    CHECK(tensors->size() == 3);
    REQUIRE(tensors->count("c") == 1);
    CHECK(torch::equal(tensors->at("c"), torch::ones({1, 1})));
    CHECK((tensors->at("b").scalar_type() == torch::kInt64));
  }

  TEST_CASE("a sharded checkpoint that disagrees with its index is refused") {
    TempDir dir;
    REQUIRE(write_safetensors(dir.path() / "s1.safetensors", {{"a", torch::ones({2})}}).ok());
    REQUIRE(write_safetensors(dir.path() / "s2.safetensors", {{"a", torch::ones({2})}, {"b", torch::ones({1})}}).ok());

    SUBCASE("a missing shard") {
      dir.write("model.safetensors.index.json", R"({"weight_map": {"a": "s1.safetensors", "z": "gone.safetensors"}})");
      const auto tensors = read_checkpoint(dir.path());
      REQUIRE_FALSE(tensors.ok());
      CHECK(contains(tensors.status().message(), "loading checkpoint"));
      CHECK(contains(tensors.status().message(), "gone.safetensors"));
      CHECK(tensors.status().code() == StatusCode::kNotFound);
    }
    SUBCASE("a name its shard does not hold") {
      dir.write("model.safetensors.index.json", R"({"weight_map": {"a": "s1.safetensors", "q": "s1.safetensors"}})");
      const auto tensors = read_checkpoint(dir.path());
      REQUIRE_FALSE(tensors.ok());
      CHECK(contains(tensors.status().message(), "tensor 'q' is listed"));
    }
    SUBCASE("a tensor in two shards") {
      dir.write("model.safetensors.index.json", R"({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}})");
      const auto tensors = read_checkpoint(dir.path());
      REQUIRE_FALSE(tensors.ok());
      CHECK(contains(tensors.status().message(), "tensor 'a' appears in more than one shard"));
    }
    SUBCASE("a shard path outside the folder") {
      dir.write("model.safetensors.index.json", R"({"weight_map": {"a": "../s1.safetensors"}})");
      const auto tensors = read_checkpoint(dir.path());
      REQUIRE_FALSE(tensors.ok());
      CHECK(contains(tensors.status().message(), "is not a file name in the checkpoint folder"));
    }
    SUBCASE("no weight_map") {
      dir.write("model.safetensors.index.json", R"({"metadata": {}})");
      const auto tensors = read_checkpoint(dir.path());
      REQUIRE_FALSE(tensors.ok());
      CHECK(contains(tensors.status().message(), "'weight_map'"));
    }
  }

  TEST_CASE("a folder without a checkpoint is not found") {
    TempDir dir;
    const auto tensors = read_checkpoint(dir.path());
    CHECK(tensors.status().code() == StatusCode::kNotFound);
    CHECK(contains(tensors.status().message(), "neither model.safetensors nor model.safetensors.index.json"));
  }
}

}  // namespace
}  // namespace torl::model
