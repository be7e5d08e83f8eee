#include "model/tokenizer.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/json.hpp"
#include "tests/temp_dir.hpp"

namespace torl::model {
namespace {

const std::filesystem::path kFixtures =
    std::filesystem::path(TORL_SOURCE_DIR) / ".." / "shared" / "fixtures" / "qwen-tokenizer";

// Loads a fixture tokenizer once per process (loading takes a while).
const Tokenizer& fixture_tokenizer(const std::string& folder) {
  static std::map<std::string, Tokenizer> loaded;
  auto it = loaded.find(folder);
  if (it == loaded.end()) {
    const auto path = kFixtures / folder;
    REQUIRE_MESSAGE(std::filesystem::exists(path / "tokenizer.json"),
                    "shared fixtures missing: " << (path / "tokenizer.json").string());
    auto tokenizer = Tokenizer::load(path);
    REQUIRE_MESSAGE(tokenizer.ok(), tokenizer.status().to_string());
    it = loaded.emplace(folder, std::move(tokenizer).value()).first;
  }
  return it->second;
}

std::vector<Json> fixture_rows(const std::string& file) {
  const auto path = kFixtures / file;
  REQUIRE_MESSAGE(std::filesystem::exists(path), "shared fixtures missing: " << path.string());
  auto rows = read_jsonl(path);
  REQUIRE_MESSAGE(rows.ok(), rows.status().to_string());
  return std::move(rows).value();
}

std::string show_ids(const std::vector<int32_t>& ids) {
  std::string text;
  for (const int32_t id : ids) text += (text.empty() ? "" : ",") + std::to_string(id);
  return "[" + text + "]";
}

// Every encode case gives exactly the reference ids; the first failures are shown in full.
void check_encode_cases(const std::string& folder, const std::string& file) {
  const Tokenizer& tokenizer = fixture_tokenizer(folder);
  const auto rows = fixture_rows(file);
  REQUIRE(rows.size() == 528);
  size_t passed = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto text = rows[i]["text"].get<std::string>();
    const auto expected = rows[i]["ids"].get<std::vector<int32_t>>();
    const auto got = tokenizer.encode(text);
    if (got == expected) {
      ++passed;
    } else if (i - passed < 5) {
      FAIL_CHECK(file << ":" << i + 1 << ": " << Json(text).dump() << "\n  expected "
                      << show_ids(expected) << "\n  got      " << show_ids(got));
    }
  }
  MESSAGE(file << ": " << passed << "/" << rows.size() << " encode cases match");
  CHECK(passed == rows.size());
}

void check_decode_cases(const std::string& folder, const std::string& file) {
  const Tokenizer& tokenizer = fixture_tokenizer(folder);
  const auto rows = fixture_rows(file);
  REQUIRE(rows.size() == 50);
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto ids = rows[i]["ids"].get<std::vector<int32_t>>();
    CHECK_MESSAGE(tokenizer.decode(ids) == rows[i]["text"].get<std::string>(),
                  file << ":" << i + 1);
  }
}

// ---- SHA-256 (FIPS 180-4), for the bench corpus hash ----
std::string sha256_hex(const std::string& message) {
  static constexpr std::array<uint32_t, 64> k = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
      0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
      0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
      0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
      0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
      0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
      0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
      0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
      0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
      0xc67178f2};
  std::array<uint32_t, 8> h = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::string data = message;
  const uint64_t bits = static_cast<uint64_t>(message.size()) * 8;
  data.push_back(static_cast<char>(0x80));
  while (data.size() % 64 != 56) data.push_back(0);
  for (int i = 7; i >= 0; --i) data.push_back(static_cast<char>(bits >> (8 * i)));
  const auto rotr = [](uint32_t x, int n) { return (x >> n) | (x << (32 - n)); };
  for (size_t block = 0; block < data.size(); block += 64) {
    std::array<uint32_t, 64> w{};
    for (int i = 0; i < 16; ++i) {
      for (int j = 0; j < 4; ++j) {
        w[i] = (w[i] << 8) | static_cast<uint8_t>(data[block + 4 * i + j]);
      }
    }
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    auto v = h;
    for (int i = 0; i < 64; ++i) {
      const uint32_t s1 = rotr(v[4], 6) ^ rotr(v[4], 11) ^ rotr(v[4], 25);
      const uint32_t ch = (v[4] & v[5]) ^ (~v[4] & v[6]);
      const uint32_t t1 = v[7] + s1 + ch + k[i] + w[i];
      const uint32_t s0 = rotr(v[0], 2) ^ rotr(v[0], 13) ^ rotr(v[0], 22);
      const uint32_t maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
      const uint32_t t2 = s0 + maj;
      v = {t1 + t2, v[0], v[1], v[2], v[3] + t1, v[4], v[5], v[6]};
    }
    for (int i = 0; i < 8; ++i) h[i] += v[i];
  }
  std::string hex;
  static constexpr char kDigits[] = "0123456789abcdef";
  for (const uint32_t word : h) {
    for (int shift = 28; shift >= 0; shift -= 4) hex.push_back(kDigits[(word >> shift) & 0xF]);
  }
  return hex;
}

// A small valid tokenizer.json: the 256 byte tokens, "ab" and "abc" by two merges (one in each
// form), and two added tokens. Tests change one field to check the loader.
Json tiny_tokenizer_json() {
  Json vocab = Json::object();
  // GPT-2 bytes_to_unicode spelling of each byte.
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    const int cp = printable ? b : next++;
    std::string spelled;
    if (cp < 0x80) {
      spelled.push_back(static_cast<char>(cp));
    } else {
      spelled.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      spelled.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    vocab[spelled] = b;
  }
  vocab["ab"] = 256;
  vocab["abc"] = 257;
  Json json = {{"version", "1.0"},
               {"truncation", nullptr},
               {"padding", nullptr},
               {"added_tokens",
                {{{"id", 258}, {"content", "<x>"}, {"special", true}},
                 {{"id", 259}, {"content", "<x>y"}, {"special", false}}}},
               {"normalizer", {{"type", "NFC"}}},
               {"pre_tokenizer",
                {{"type", "Sequence"},
                 {"pretokenizers",
                  {{{"type", "Split"},
                    {"pattern",
                     {{"Regex",
                       "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                       "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
                    {"behavior", "Isolated"},
                    {"invert", false}},
                   {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
               {"post_processor", {{"type", "ByteLevel"}}},
               {"decoder", {{"type", "ByteLevel"}}},
               {"model",
                {{"type", "BPE"},
                 {"dropout", nullptr},
                 {"unk_token", nullptr},
                 {"byte_fallback", false},
                 {"vocab", vocab},
                 {"merges", Json::array({"a b", Json::array({"ab", "c"})})}}}};
  return json;
}

Expected<Tokenizer> load_json(const testing::TempDir& dir, const Json& json) {
  return Tokenizer::load(dir.write("tokenizer.json", json.dump()));
}

TEST_SUITE("model") {
  TEST_CASE("every Qwen2.5 encode case gives the reference ids") {
    check_encode_cases(".", "encode_cases.jsonl");
  }

  TEST_CASE("every Qwen2.5 decode case gives the reference text") {
    check_decode_cases(".", "decode_cases.jsonl");
  }

  TEST_CASE("every Qwen3 encode case gives the reference ids (merges as pairs)") {
    check_encode_cases("qwen3", "qwen3/encode_cases.jsonl");
  }

  TEST_CASE("every Qwen3 decode case gives the reference text") {
    check_decode_cases("qwen3", "qwen3/decode_cases.jsonl");
  }

  TEST_CASE("the bench corpus encodes to the reference count and hash") {
    const auto expected_path = kFixtures / "bench_corpus.expected.json";
    REQUIRE_MESSAGE(std::filesystem::exists(expected_path), "shared fixtures missing");
    const auto expected = read_json_file(expected_path);
    REQUIRE(expected.ok());
    std::ifstream in(kFixtures / "bench_corpus.txt", std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    const auto ids = fixture_tokenizer(".").encode(text.str());
    CHECK(ids.size() == (*expected)["tokens"].get<size_t>());
    std::string joined;
    for (const int32_t id : ids) joined += (joined.empty() ? "" : ",") + std::to_string(id);
    CHECK(sha256_hex(joined) == (*expected)["sha256_of_ids_joined_by_comma"].get<std::string>());
  }

  TEST_CASE("encoding from several threads at once gives the same ids as from one") {
    const Tokenizer& tokenizer = fixture_tokenizer(".");
    const auto rows = fixture_rows("encode_cases.jsonl");
    std::vector<std::vector<int32_t>> results(4);
    std::vector<std::thread> threads;
    for (size_t t = 0; t < results.size(); ++t) {
      threads.emplace_back([&, t] {
        for (const Json& row : rows) {
          const auto ids = tokenizer.encode(row["text"].get<std::string>());
          results[t].insert(results[t].end(), ids.begin(), ids.end());
        }
      });
    }
    for (auto& thread : threads) thread.join();
    std::vector<int32_t> expected;
    for (const Json& row : rows) {
      const auto ids = row["ids"].get<std::vector<int32_t>>();
      expected.insert(expected.end(), ids.begin(), ids.end());
    }
    for (const auto& result : results) CHECK(result == expected);
  }

  TEST_CASE("long pieces (merged with a heap) round-trip and match their repeated parts") {
    const Tokenizer& tokenizer = fixture_tokenizer(".");
    const std::string run(5000, '=');
    const auto ids = tokenizer.encode(run);
    CHECK(tokenizer.decode(ids) == run);
    CHECK(ids.size() < run.size() / 4);
    std::string word;
    for (int i = 0; i < 400; ++i) word += "abcdefghij";
    CHECK(tokenizer.decode(tokenizer.encode(word)) == word);
  }

  TEST_CASE("sha256 of the test helper matches a known digest") {
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  }

  TEST_CASE("the byte-level tokenizer round-trips bytes and matches its special tokens") {
    const Tokenizer tokenizer = Tokenizer::byte_level({"<|bos|>", "<|eos|>"});
    CHECK(tokenizer.vocab_size() == 258);
    CHECK(tokenizer.token_id("<|eos|>") == 257);
    CHECK_FALSE(tokenizer.token_id("<|pad|>").has_value());
    const std::vector<int32_t> ids =
        tokenizer.encode(std::string_view("<|bos|>h\xC3\xA9<|eos|>\0x", 19));
    CHECK(ids == std::vector<int32_t>{256, 'h', 0xC3, 0xA9, 257, 0, 'x'});
    CHECK(tokenizer.decode(ids) == std::string("<|bos|>h\xC3\xA9<|eos|>\0x", 19));
    CHECK(tokenizer.encode("<|bos") == std::vector<int32_t>{'<', '|', 'b', 'o', 's'});
  }

  TEST_CASE("decoding replaces each maximal invalid UTF-8 subsequence with one U+FFFD") {
    const Tokenizer tokenizer = Tokenizer::byte_level({});
    const std::string replacement = "\xEF\xBF\xBD";
    CHECK(tokenizer.decode(std::vector<int32_t>{0xE4, 0xBD}) == replacement);
    CHECK(tokenizer.decode(std::vector<int32_t>{0xFF, 0xFE}) == replacement + replacement);
    CHECK(tokenizer.decode(std::vector<int32_t>{0xF0, 0x9F, 0x98, 'a'}) == replacement + "a");
    CHECK(tokenizer.decode(std::vector<int32_t>{0xED, 0xA0, 0x80}) ==
          replacement + replacement + replacement);  // a surrogate is not a valid prefix
    CHECK(tokenizer.decode(std::vector<int32_t>{0xE2, 0x82, 0xAC, 0x80}) ==
          "\xE2\x82\xAC" + replacement);
    CHECK(tokenizer.decode(std::vector<int32_t>{9999, 'a'}) == "a");  // unknown ids are skipped
  }

  TEST_CASE(
      "a small tokenizer.json loads, merges in both forms, and matches the longest added token") {
    testing::TempDir dir;
    const auto tokenizer = load_json(dir, tiny_tokenizer_json());
    REQUIRE_MESSAGE(tokenizer.ok(), tokenizer.status().to_string());
    CHECK(tokenizer->vocab_size() == 260);
    CHECK(tokenizer->encode("abc ab") == std::vector<int32_t>{257, ' ', 256});
    CHECK(tokenizer->encode("<x>yz<x>") == std::vector<int32_t>{259, 'z', 258});
    CHECK(tokenizer->encode("<x") == std::vector<int32_t>{'<', 'x'});
    CHECK(tokenizer->token_id("abc") == 257);
    CHECK(tokenizer->token_id("\xC4\xA0") == ' ');  // "Ġ", the byte-level spelling of a space
    CHECK(tokenizer->decode(std::vector<int32_t>{259, 32, 257}) == "<x>y abc");
  }

  TEST_CASE("a GPT-2 style ByteLevel pre-tokenizer with its own regex is supported") {
    testing::TempDir dir;
    Json json = tiny_tokenizer_json();
    json["pre_tokenizer"] = {{"type", "ByteLevel"},
                             {"add_prefix_space", false},
                             {"trim_offsets", true},
                             {"use_regex", true}};
    json["normalizer"] = nullptr;
    const auto tokenizer = load_json(dir, json);
    REQUIRE_MESSAGE(tokenizer.ok(), tokenizer.status().to_string());
    // GPT-2 keeps the digits of a number together and a space before it.
    CHECK(tokenizer->encode("ab 12") == std::vector<int32_t>{256, ' ', '1', '2'});
    json["pre_tokenizer"]["add_prefix_space"] = true;
    CHECK(load_json(dir, json).status().message().find("pre_tokenizer.add_prefix_space true") !=
          std::string::npos);
  }

  TEST_CASE("unsupported tokenizer.json features fail loading and name the field") {
    testing::TempDir dir;
    struct Case {
      const char* pointer;
      Json value;
      const char* message_part;
    };
    const std::vector<Case> cases = {
        {"/model/type", "Unigram", "model.type \"Unigram\" is not supported (only BPE)"},
        {"/normalizer/type", "NFKC", "normalizer.type \"NFKC\" is not supported"},
        {"/pre_tokenizer/pretokenizers/0/pattern/Regex", "\\s+",
         "pre_tokenizer.pretokenizers[0].pattern.Regex"},
        {"/model/dropout", 0.1, "model.dropout 0.1 is not supported"},
        {"/model/byte_fallback", true, "model.byte_fallback true is not supported"},
        {"/added_tokens/0/lstrip", true, "added_tokens[0].lstrip true is not supported"},
        {"/decoder/type", "WordPiece", "decoder.type \"WordPiece\" is not supported"},
        {"/post_processor/type", "TemplateProcessing",
         "post_processor.type \"TemplateProcessing\""},
        {"/truncation", {{"max_length", 8}}, "truncation {\"max_length\":8} is not supported"},
        {"/model/merges/0", "a q", "model.merges[0]"},
    };
    for (const Case& c : cases) {
      Json json = tiny_tokenizer_json();
      json[Json::json_pointer(c.pointer)] = c.value;
      const auto tokenizer = load_json(dir, json);
      REQUIRE_FALSE(tokenizer.ok());
      CHECK_MESSAGE(tokenizer.status().message().find(c.message_part) != std::string::npos,
                    tokenizer.status().message());
    }
    CHECK(Tokenizer::load(dir.path() / "missing").status().code() == StatusCode::kNotFound);
  }
}

}  // namespace
}  // namespace torl::model
