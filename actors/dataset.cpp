#include "actors/dataset.hpp"

#include <fstream>

#include "common/json.hpp"

namespace torl::actors {
namespace {

constexpr std::string_view kTorlTemplate =
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it.\n"
    "User: Please integrate natural language reasoning with programs to solve the problem above, and put your "
    "final answer within \\boxed{}.\n[PROMPT]\nAssistant:\n";

// A field as text: strings as they are, numbers as JSON writes them.
Expected<std::string> text_field(const Json& object, const std::string& key, const std::string& where,
                                 const char* setting) {
  auto it = object.find(key);
  if (it == object.end()) return invalid_argument(where + ": missing key '" + key + "' (set by " + setting + ")");
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number()) return it->dump();
  return invalid_argument(where + ": '" + key + "' must be a string or a number (got " + json_type_name(*it) + ")");
}

}  // namespace

Expected<std::vector<Problem>> load_problems(const std::filesystem::path& file, const config::DataConfig& data,
                                             int max_problems) {
  std::ifstream in(file);
  if (!in) return Status(StatusCode::kNotFound, "cannot read data set '" + file.string() + "'");
  std::vector<Problem> problems;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (max_problems > 0 && static_cast<int>(problems.size()) >= max_problems) break;
    const std::string where = file.string() + ":" + std::to_string(number);
    auto object = parse_json(line, where);
    if (!object) return object.status();
    if (!object->is_object()) return invalid_argument(where + ": expected a JSON object");
    Problem problem;
    problem.dataset = file.stem().string();
    problem.index = static_cast<int64_t>(problems.size());
    if (auto id = object->find("id"); id != object->end()) problem.id = id->is_string() ? id->get<std::string>() : id->dump();
    auto text = text_field(*object, data.prompt_key, where, "data.prompt_key");
    if (!text) return text.status();
    auto answer = text_field(*object, data.answer_key, where, "data.answer_key");
    if (!answer) return answer.status();
    problem.problem = std::move(*text);
    problem.answer = std::move(*answer);
    problems.push_back(std::move(problem));
  }
  if (in.bad()) return io_error("reading data set '" + file.string() + "' failed");
  if (problems.empty()) return invalid_argument(file.string() + ": no problems (the data set is empty)");
  return problems;
}

std::string format_prompt(config::PromptTemplate prompt_template, const std::string& problem) {
  if (prompt_template == config::PromptTemplate::kRaw) return problem;
  std::string out(kTorlTemplate);
  out.replace(out.find("[PROMPT]"), 8, problem);
  return out;
}

}  // namespace torl::actors
