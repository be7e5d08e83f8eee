// Training checkpoints on the tiny fixture model (../shared/fixtures/tiny-qwen2): the round trip of
// weights, optimizer state and trainer state, retention, finding the newest, and the errors for
// corrupt files, mismatched configs, unwritable folders and a full disk.
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "model/checkpoint.hpp"
#include "tests/model/policy_samples.hpp"
#include "tests/temp_dir.hpp"

// After the LibTorch headers: glog (through c10) defines its own CHECK (see qwen2_test.cpp).
#include <doctest/doctest.h>

namespace torl::model {
namespace {

namespace fs = std::filesystem;

fs::path fixture_dir() {
  return fs::path(TORL_SOURCE_DIR) / ".." / "shared" / "fixtures" / "tiny-qwen2";
}

Qwen2Model load_tiny() { return testing::load_tiny(torch::kFloat32); }

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A base model folder as a run names it: the fixture's config.json and generation_config.json plus a
// tokenizer.json (the fixture has none; its content does not matter here).
fs::path make_source(const testing::TempDir& temp) {
  const fs::path source = temp.path() / "base";
  fs::create_directories(source);
  for (const char* name : {"config.json", "generation_config.json"}) {
    temp.write("base/" + std::string(name), read_text(fixture_dir() / name));
  }
  temp.write("base/tokenizer.json", "{\"model\": {\"type\": \"BPE\"}}\n");
  return source;
}

// AdamW-like state for two of the model's parameters (float32 moments, int64 step counts).
TensorMap make_optimizer_state(const Qwen2Model& model, int seed) {
  torch::manual_seed(seed);
  TensorMap state;
  for (const std::string name : {"model.norm.weight", "model.embed_tokens.weight"}) {
    const torch::Tensor param = model.named_parameters().at(name);
    state["exp_avg/" + name] = torch::randn_like(param);
    state["exp_avg_sq/" + name] = torch::rand_like(param);
    state["step/" + name] = torch::full({1}, seed, torch::kInt64);
  }
  return state;
}

CheckpointContents make_contents(int64_t step, const Qwen2Model& model, const fs::path& source) {
  CheckpointContents contents;
  contents.step = step;
  contents.model = &model;
  contents.model_source = source;
  contents.optimizer = make_optimizer_state(model, static_cast<int>(step));
  contents.state = {{"data_position", 40 * step}, {"rng", "x7f3"}, {"in_flight", {1, 2, 3}}, {"lr", 0.1}};
  return contents;
}

// The step-* folder names under run/checkpoints, and every other entry there, sorted.
std::vector<std::string> entries(const fs::path& run) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(run / "checkpoints")) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Equal values and bit patterns.
bool same_bits(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  const auto ac = a.contiguous(), bc = b.contiguous();
  return std::memcmp(ac.data_ptr(), bc.data_ptr(), ac.nbytes()) == 0;
}

// The file-size limit of this process lowered to `bytes` while alive, so that writes past it fail
// with EFBIG as they would on a full disk (works as root, unlike permissions).
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);  // else the process is killed instead of write failing
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_) == 0);
    rlimit limit = old_;
    limit.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &limit) == 0);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    ::signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit old_{};
  sighandler_t old_handler_ = SIG_DFL;
};

TEST_SUITE("model") {
  TEST_CASE("crc32 is zlib's: the standard check value, in one call or continued") {
    CHECK(crc32("123456789") == 0xCBF43926u);
    CHECK(crc32("56789", crc32("1234")) == 0xCBF43926u);
    CHECK(crc32("") == 0u);
    // Longer than the 8-byte fast path, odd length: zlib.crc32(b"The quick brown fox jumps over the lazy dog")
    CHECK(crc32("The quick brown fox jumps over the lazy dog") == 0x414FA339u);
  }

  TEST_CASE("a checkpoint round-trips the weights bit for bit, the optimizer and trainer state, and the base model's files") {
    const auto model = load_tiny();
    testing::TempDir temp;
    const auto source = make_source(temp);
    const auto run = temp.path() / "run";
    const auto contents = make_contents(7, model, source);
    const Status written = write_checkpoint(run, contents, 3);
    REQUIRE_MESSAGE(written.ok(), written.to_string());

    const auto dir = run / "checkpoints" / "step-00000007";
    CHECK(entries(run) == std::vector<std::string>{"step-00000007"});
    auto latest = latest_checkpoint(run);
    REQUIRE_MESSAGE(latest.ok(), latest.status().to_string());
    REQUIRE(latest->has_value());
    CHECK(**latest == dir);

    auto loaded = load_checkpoint(dir, model.config());
    REQUIRE_MESSAGE(loaded.ok(), loaded.status().to_string());
    CHECK(loaded->dir == dir);
    CHECK(loaded->step == 7);
    CHECK(loaded->state == contents.state);
    REQUIRE(loaded->optimizer.size() == contents.optimizer.size());
    for (const auto& [name, tensor] : contents.optimizer) {
      INFO(name);
      REQUIRE(loaded->optimizer.count(name) == 1);
      CHECK(same_bits(loaded->optimizer.at(name), tensor));
    }

    auto reloaded = Qwen2Model::load(dir, torch::kCPU, torch::kFloat32);
    REQUIRE_MESSAGE(reloaded.ok(), reloaded.status().to_string());
    const auto before = model.named_parameters(), after = reloaded->named_parameters();
    REQUIRE(before.size() == after.size());
    for (const auto& [name, tensor] : before) {
      INFO(name);
      CHECK(same_bits(after.at(name), tensor));
    }

    // transformers reads the weights only with {"format": "pt"} in the metadata.
    auto weights = read_safetensors(dir / "model.safetensors");
    REQUIRE(weights.ok());
    const std::string model_file = read_text(dir / "model.safetensors");
    uint64_t header_size = 0;
    std::memcpy(&header_size, model_file.data(), 8);
    const auto header = Json::parse(model_file.substr(8, header_size));
    CHECK(header.at("__metadata__") == Json{{"format", "pt"}});

    // The base model's files are copied byte for byte; absent tokenizer files stay absent.
    for (const char* name : {"config.json", "generation_config.json", "tokenizer.json"}) {
      INFO(name);
      CHECK(read_text(dir / name) == read_text(source / name));
    }
    CHECK_FALSE(fs::exists(dir / "vocab.json"));

    // state.json lists every file with the size and zlib CRC-32 of what is on disk.
    const auto state = Json::parse(read_text(dir / "state.json"));
    CHECK(state.at("step") == 7);
    CHECK(state.at("files").size() == 5);
    const std::string config_text = read_text(dir / "config.json");
    char crc_text[9];
    std::snprintf(crc_text, sizeof crc_text, "%08x", crc32(config_text));
    CHECK(state.at("files").at("config.json") ==
          Json{{"bytes", config_text.size()}, {"crc32", std::string(crc_text)}});
  }

  TEST_CASE("with keep=2, three writes leave the two newest; rewriting a step replaces it") {
    const auto model = load_tiny();
    testing::TempDir temp;
    const auto source = make_source(temp);
    const auto run = temp.path() / "run";
    for (const int64_t step : {1, 2, 3}) {
      const Status written = write_checkpoint(run, make_contents(step, model, source), 2);
      REQUIRE_MESSAGE(written.ok(), written.to_string());
    }
    CHECK(entries(run) == std::vector<std::string>{"step-00000002", "step-00000003"});

    auto again = make_contents(3, model, source);
    again.state = {{"rewritten", true}};
    const Status rewritten = write_checkpoint(run, again, 2);
    REQUIRE_MESSAGE(rewritten.ok(), rewritten.to_string());
    CHECK(entries(run) == std::vector<std::string>{"step-00000002", "step-00000003"});
    auto loaded = load_checkpoint(run / "checkpoints" / "step-00000003", model.config());
    REQUIRE_MESSAGE(loaded.ok(), loaded.status().to_string());
    CHECK(loaded->state == again.state);
  }

  TEST_CASE("latest_checkpoint picks the highest step and ignores temporary and incomplete folders") {
    const auto model = load_tiny();
    testing::TempDir temp;
    const auto source = make_source(temp);
    const auto run = temp.path() / "run";

    auto none = latest_checkpoint(run);
    REQUIRE_MESSAGE(none.ok(), none.status().to_string());
    CHECK_FALSE(none->has_value());

    for (const int64_t step : {9, 10, 2}) {  // 10 sorts before 9 as text, not as a number
      const Status written = write_checkpoint(run, make_contents(step, model, source), 5);
      REQUIRE_MESSAGE(written.ok(), written.to_string());
    }
    // What a crash leaves: a temporary folder of a later step (even with its state.json), and a
    // step folder without one.
    temp.write("run/checkpoints/.tmp-step-00000011-Ab12Cd/state.json", "{}");
    fs::create_directories(run / "checkpoints" / "step-00000012");
    auto latest = latest_checkpoint(run);
    REQUIRE_MESSAGE(latest.ok(), latest.status().to_string());
    REQUIRE(latest->has_value());
    CHECK(**latest == run / "checkpoints" / "step-00000010");

    // The next write cleans the temporary folder up.
    const Status written = write_checkpoint(run, make_contents(13, model, source), 5);
    REQUIRE_MESSAGE(written.ok(), written.to_string());
    CHECK(entries(run) == std::vector<std::string>{"step-00000002", "step-00000009", "step-00000010",
                                                   "step-00000012", "step-00000013"});
  }

  TEST_CASE("only complete checkpoints count towards keep; resuming sets newer incomplete folders aside") {
    const auto model = load_tiny();
    testing::TempDir temp;
    const auto source = make_source(temp);
    const auto run = temp.path() / "run";
    fs::create_directories(run / "checkpoints" / "step-00000009");  // empty: a write that never finished
    for (const int64_t step : {1, 2, 3}) {
      const Status written = write_checkpoint(run, make_contents(step, model, source), 2);
      REQUIRE_MESSAGE(written.ok(), written.to_string());
    }
    // the two newest complete ones stay (the empty folder pushed step 2 out before), the empty one too
    CHECK(entries(run) == std::vector<std::string>{"step-00000002", "step-00000003", "step-00000009"});

    auto aside = set_aside_incomplete_checkpoints(run, 3);
    REQUIRE_MESSAGE(aside.ok(), aside.status().to_string());
    REQUIRE(aside->size() == 1);
    CHECK(aside->front() == run / "checkpoints" / "incomplete-step-00000009");
    CHECK(entries(run) == std::vector<std::string>{"incomplete-step-00000009", "step-00000002", "step-00000003"});
    auto latest = latest_checkpoint(run);
    REQUIRE_MESSAGE(latest.ok(), latest.status().to_string());
    CHECK(**latest == run / "checkpoints" / "step-00000003");
    // nothing newer and incomplete: nothing moves
    auto none = set_aside_incomplete_checkpoints(run, 3);
    REQUIRE_MESSAGE(none.ok(), none.status().to_string());
    CHECK(none->empty());
  }

  TEST_CASE("one flipped byte in model.safetensors is a checksum error naming the checkpoint") {
    const auto model = load_tiny();
    testing::TempDir temp;
    const auto run = temp.path() / "run";
    const Status written = write_checkpoint(run, make_contents(2, model, make_source(temp)), 2);
    REQUIRE_MESSAGE(written.ok(), written.to_string());
    const auto dir = run / "checkpoints" / "step-00000002";

    std::string bytes = read_text(dir / "model.safetensors");
    bytes[bytes.size() / 2] ^= 0x01;
    std::ofstream(dir / "model.safetensors", std::ios::binary | std::ios::trunc) << bytes;

    auto loaded = load_checkpoint(dir, model.config());
    REQUIRE_FALSE(loaded.ok());
    const std::string message = loaded.status().message();
    CHECK_MESSAGE(message.find("checkpoint '" + dir.string() + "': model.safetensors is corrupt (checksum mismatch") == 0,
                  message);
  }

  TEST_CASE("a truncated state.json or a missing file is an error naming the checkpoint and the file") {
    const auto model = load_tiny();
    testing::TempDir temp;
    const auto run = temp.path() / "run";
    const auto source = make_source(temp);
    for (const int64_t step : {1, 2}) {
      const Status written = write_checkpoint(run, make_contents(step, model, source), 2);
      REQUIRE_MESSAGE(written.ok(), written.to_string());
    }

    const auto one = run / "checkpoints" / "step-00000001";
    const std::string state = read_text(one / "state.json");
    std::ofstream(one / "state.json", std::ios::binary | std::ios::trunc) << state.substr(0, state.size() / 2);
    auto truncated = load_checkpoint(one, model.config());
    REQUIRE_FALSE(truncated.ok());
    CHECK_MESSAGE(truncated.status().message().find("checkpoint '" + one.string() + "': state.json is unreadable (") == 0,
                  truncated.status().message());
    CHECK_MESSAGE(truncated.status().message().find("invalid JSON") != std::string::npos,
                  truncated.status().message());

    const auto two = run / "checkpoints" / "step-00000002";
    fs::remove(two / "optimizer.safetensors");
    auto missing = load_checkpoint(two, model.config());
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.status().code() == StatusCode::kNotFound);
    CHECK(missing.status().message() == "checkpoint '" + two.string() + "': optimizer.safetensors is missing");
  }

  TEST_CASE("a checkpoint of another model shape is refused, naming the key and both values") {
    const auto model = load_tiny();
    testing::TempDir temp;
    const auto run = temp.path() / "run";
    const Status written = write_checkpoint(run, make_contents(4, model, make_source(temp)), 2);
    REQUIRE_MESSAGE(written.ok(), written.to_string());

    Qwen2Config expected = model.config();
    expected.num_hidden_layers = 3;
    auto loaded = load_checkpoint(run / "checkpoints" / "step-00000004", expected);
    REQUIRE_FALSE(loaded.ok());
    CHECK_MESSAGE(loaded.status().message().find(
                      "config.json does not match the run's model: num_hidden_layers is 2 in the checkpoint, "
                      "3 in the run's model") != std::string::npos,
                  loaded.status().message());
  }

  TEST_CASE("a base model folder whose config.json does not describe the model is refused before writing") {
    const auto model = load_tiny();
    testing::TempDir temp;
    const auto source = make_source(temp);
    auto config = Json::parse(read_text(source / "config.json"));
    config["vocab_size"] = 2048;
    temp.write("base/config.json", config.dump());
    const auto run = temp.path() / "run";
    const Status written = write_checkpoint(run, make_contents(1, model, source), 2);
    REQUIRE_FALSE(written.ok());
    CHECK_MESSAGE(written.message().find("vocab_size is 2048 in '" + (source / "config.json").string() +
                                         "', 1024 in the model being saved") != std::string::npos,
                  written.message());
    CHECK_FALSE(fs::exists(run / "checkpoints"));
  }

  TEST_CASE("an unwritable checkpoints folder is an error naming the path; older checkpoints stay") {
    const auto model = load_tiny();
    testing::TempDir temp;
    const auto run = temp.path() / "run";
    const auto source = make_source(temp);
    const Status first = write_checkpoint(run, make_contents(1, model, source), 1);
    REQUIRE_MESSAGE(first.ok(), first.to_string());

    const auto folder = run / "checkpoints";
    fs::permissions(folder, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                                fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
    // Root ignores permissions; a file-system uid of nobody (this thread only) makes them apply.
    const bool root = ::geteuid() == 0;
    if (root) {
      ::setfsuid(65534);
      if (::setfsuid(static_cast<uid_t>(-1)) != 65534) {
        fs::permissions(folder, fs::perms::owner_all, fs::perm_options::add);
        MESSAGE("skipped: running as root without the right to change the file-system uid");
        return;
      }
    }
    const Status second = write_checkpoint(run, make_contents(2, model, source), 1);
    if (root) ::setfsuid(0);
    fs::permissions(folder, fs::perms::owner_all, fs::perm_options::add);

    REQUIRE_FALSE(second.ok());
    const std::string message = second.message();
    CHECK_MESSAGE(message.find("writing checkpoint '" + (folder / "step-00000002").string() + "': cannot create '" +
                               (folder / ".tmp-step-00000002-").string()) == 0,
                  message);
    CHECK_MESSAGE(message.find("Permission denied") != std::string::npos, message);
    CHECK(entries(run) == std::vector<std::string>{"step-00000001"});
    auto loaded = load_checkpoint(folder / "step-00000001", model.config());
    CHECK_MESSAGE(loaded.ok(), loaded.status().to_string());
  }

  TEST_CASE("a full disk midway is an error naming the file; no partial checkpoint is left") {
    const auto model = load_tiny();
    testing::TempDir temp;
    const auto run = temp.path() / "run";
    const auto source = make_source(temp);
    const Status first = write_checkpoint(run, make_contents(1, model, source), 1);
    REQUIRE_MESSAGE(first.ok(), first.to_string());

    Status second;
    {
      FileSizeLimit limit(64 * 1024);  // model.safetensors is ~900 KB
      second = write_checkpoint(run, make_contents(2, model, source), 1);
    }
    REQUIRE_FALSE(second.ok());
    const std::string message = second.message();
    const auto folder = run / "checkpoints";
    CHECK_MESSAGE(message.find("writing checkpoint '" + (folder / "step-00000002").string() + "': writing '" +
                               (folder / ".tmp-step-00000002-").string()) == 0,
                  message);
    CHECK_MESSAGE(message.find("model.safetensors") != std::string::npos, message);
    CHECK_MESSAGE(message.find("File too large") != std::string::npos, message);
    CHECK(entries(run) == std::vector<std::string>{"step-00000001"});
    auto latest = latest_checkpoint(run);
    REQUIRE(latest.ok());
    REQUIRE(latest->has_value());
    CHECK(**latest == folder / "step-00000001");
    auto loaded = load_checkpoint(folder / "step-00000001", model.config());
    CHECK_MESSAGE(loaded.ok(), loaded.status().to_string());
  }
}

}  // namespace
}  // namespace torl::model
