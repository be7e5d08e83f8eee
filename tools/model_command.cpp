// torl model check: a model folder's forward and greedy generation against reference outputs of
// another implementation (HF transformers, via tests/reference/hf_reference.py).
#include <iomanip>

#include "model/device.hpp"
#include "model/reference_check.hpp"
#include "tools/arg_reader.hpp"
#include "tools/commands.hpp"

namespace torl::tools {
namespace {

constexpr std::string_view kUsage =
    "usage: torl model check --model DIR --reference FILE [--device cpu|cuda[:N]]\n"
    "                        [--dtype float32|bfloat16|float16]\n"
    "\n"
    "Loads DIR (config.json + safetensors) and compares its logits, token log-probs and greedy\n"
    "generation through the engine with FILE, reference outputs in the layout that\n"
    "tests/reference/hf_reference.py writes from HF transformers:\n"
    "  .venv/bin/python tests/reference/hf_reference.py DIR ref.safetensors\n"
    "  build/torl model check --model DIR --reference ref.safetensors\n"
    "Prints one line per check (error and tolerance); exit 0 when all pass, 1 when one fails.\n";

int usage_error(std::ostream& err, const std::string& message) {
  err << "torl model: " << message << "\n" << kUsage;
  return kExitUsage;
}

}  // namespace

int model_command(const Args& args, std::ostream& out, std::ostream& err) {
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) return out << kUsage, kExitOk;
  if (args.empty() || args[0] != "check") return usage_error(err, "expected the subcommand check");
  std::string model_dir, reference_file, device_name = "cpu", dtype_name = "float32";
  const Args rest(args.begin() + 1, args.end());
  ArgReader reader(rest);
  while (!reader.done()) {
    if (reader.flag("--help") || reader.flag("-h")) return out << kUsage, kExitOk;
    if (reader.value("--model", model_dir) || reader.value("--reference", reference_file) ||
        reader.value("--device", device_name) || reader.value("--dtype", dtype_name)) {
      continue;
    }
    reader.fail("unexpected argument '" + reader.peek() + "'");
  }
  if (!reader.error().empty()) return usage_error(err, reader.error());
  if (model_dir.empty() || reference_file.empty()) return usage_error(err, "--model and --reference are needed");
  auto device = model::resolve_device(device_name);
  if (!device) return usage_error(err, device.status().message());
  auto dtype = model::parse_dtype(dtype_name);
  if (!dtype) return usage_error(err, dtype.status().message());

  auto reference = model::read_safetensors(reference_file);
  if (!reference) return err << "torl model check: " << reference.status().message() << "\n", kExitFailed;
  auto loaded = model::Qwen2Model::load(model_dir, *device, *dtype);
  if (!loaded) return err << "torl model check: " << loaded.status().message() << "\n", kExitFailed;
  auto checks = model::check_against_reference(*loaded, *reference);
  if (!checks) {
    return err << "torl model check: " << reference_file << ": " << checks.status().message() << "\n", kExitFailed;
  }
  bool passed = true;
  out << "torl model check: " << model_dir << " (" << device_name << " " << dtype_name << ") against " << reference_file
      << "\n";
  for (const auto& check : *checks) {
    passed = passed && check.passed();
    out << (check.passed() ? "PASS " : "FAIL ") << std::left << std::setw(16) << check.name << std::right
        << " error " << std::setprecision(3) << check.error << " (tolerance " << check.tolerance << "; "
        << check.detail << ")\n";
  }
  return passed ? kExitOk : kExitFailed;
}

}  // namespace torl::tools
