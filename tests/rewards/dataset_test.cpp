// The issue's "must show" checks on the shared evaluation data (../shared/data): every MATH500
// solution's last \boxed{} is equivalent to the row's answer, and every Minerva and OlympiadBench
// answer is equivalent to itself rewritten in another exact form and different from perturbed copies.
// The rewritings and perturbations are generated here, deterministically, and each applies only
// where it keeps (or certainly changes) the answer's mathematics; see `rewritings` and `perturbations`.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/json.hpp"
#include "rewards/answer.hpp"
#include "rewards/grader.hpp"

namespace torl::rewards {
namespace {

// ---- the data ----

const std::filesystem::path kDataDir = std::filesystem::path(TORL_SOURCE_DIR) / ".." / "shared" / "data";

// The rows of a shared data file; fails the test case when the shared data is missing.
std::vector<Json> load_rows(const std::string& name) {
  auto rows = read_jsonl(kDataDir / name);
  if (!rows) {
    FAIL("the shared data is missing: " << rows.status().message()
                                        << " (the evaluation sets live in ../shared/data beside the repository)");
  }
  return std::move(rows).value();
}

// One gold answer with what the generators need to know about its meaning.
struct GoldAnswer {
  std::string id;
  std::string answer;
  bool unordered_list = false;  // a comma list whose order does not matter (a set of solutions)
  bool interval = false;        // an interval or union of intervals: brackets carry meaning
};

// OlympiadBench rows marked is_multiple_answer whose comma list is nevertheless ordered: the question
// asks for named quantities in a given order, so reordering would change the answer.
const std::set<std::string> kOrderedMultipleAnswers = {
    "olympiadbench-2012",  // smallest and largest N
    "olympiadbench-2235",  // two sequences of five consecutive integers, flattened
    "olympiadbench-2268",  // minimum and maximum of f
    "olympiadbench-2277",  // the ages of Paolo, Qing and Rayna
    "olympiadbench-2317",  // b and c
    "olympiadbench-2349",  // m and n of m/n
    "olympiadbench-2356",  // table entries
    "olympiadbench-2369",  // goats and helicopters
    "olympiadbench-2382",  // T(10), T(11), T(12)
    "olympiadbench-2420",  // a, h and k
    "olympiadbench-2445",  // the solution (x, y) of a system
    "olympiadbench-2467",  // a and b
    "olympiadbench-2472",  // x, y and z
    "olympiadbench-2490",  // e(18) and e(19)
    "olympiadbench-2498",  // "1/2, sqrt(x)": y as a function of x, garbled into two parts
    "olympiadbench-2509",  // a, b and c
    "olympiadbench-2532",  // a and b
    "olympiadbench-2536",  // p and q
    "olympiadbench-2575",  // the solution (x, y, z) of a system
    "olympiadbench-2679",  // d(6), d(16), d(72)
    "olympiadbench-2702",  // d(3/5), d(5/8), d(7/18)
    "olympiadbench-2753",  // maximum and minimum
    "olympiadbench-2754",  // maximum and minimum
};

std::vector<GoldAnswer> minerva_answers() {
  std::vector<GoldAnswer> answers;
  for (const auto& row : load_rows("minerva_math.jsonl")) {
    answers.push_back({row.at("id").get<std::string>(), row.at("answer").get<std::string>()});
  }
  return answers;
}

std::vector<GoldAnswer> olympiadbench_answers() {
  std::vector<GoldAnswer> answers;
  for (const auto& row : load_rows("olympiadbench.jsonl")) {
    GoldAnswer gold{row.at("id").get<std::string>(), row.at("answer").get<std::string>()};
    gold.unordered_list = row.at("is_multiple_answer").get<bool>() && !kOrderedMultipleAnswers.contains(gold.id);
    gold.interval = row.at("answer_type") == "Interval";
    answers.push_back(std::move(gold));
  }
  return answers;
}

// ---- text helpers ----

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_alnum(char c) { return is_digit(c) || is_letter(c); }

std::string trim(std::string_view text) {
  const size_t begin = text.find_first_not_of(' ');
  if (begin == std::string_view::npos) return "";
  return std::string(text.substr(begin, text.find_last_not_of(' ') - begin + 1));
}

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// For each position: whether it is a letter of a command name (`\frac` -> f, r, a, c).
std::vector<bool> command_letters(std::string_view text) {
  std::vector<bool> marks(text.size(), false);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') continue;
    size_t j = i + 1;
    while (j < text.size() && is_letter(text[j])) marks[j++] = true;
    i = j - 1;
  }
  return marks;
}

// Prose such as "where b is an arbitrary integer": a lowercase word of 4+ letters that is no command.
bool is_prose(std::string_view text) {
  const auto marks = command_letters(text);
  size_t run = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    run = (text[i] >= 'a' && text[i] <= 'z' && !marks[i]) ? run + 1 : 0;
    if (run >= 4) return true;
  }
  return false;
}

// Spans [begin, end) of the comma-separated elements outside any bracket: ( [ { and their closers
// in any pairing, so that half-open intervals such as (0,4] count as one element.
std::vector<std::pair<size_t, size_t>> top_level_elements(std::string_view text) {
  std::vector<std::pair<size_t, size_t>> spans;
  int depth = 0;
  size_t begin = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '(' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == ']' || c == '}') --depth;
    if (c == ',' && depth == 0 && (i == 0 || text[i - 1] != '\\')) {
      spans.push_back({begin, i});
      begin = i + 1;
    }
  }
  spans.push_back({begin, text.size()});
  return spans;
}

std::vector<std::string> top_level_list(std::string_view text) {
  std::vector<std::string> elements;
  for (const auto& [begin, end] : top_level_elements(text)) elements.push_back(trim(text.substr(begin, end - begin)));
  return elements;
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string text;
  for (size_t i = 0; i < parts.size(); ++i) text += (i ? std::string(separator) : "") + parts[i];
  return text;
}

// "1,000" or "8,221": a list that a grader may read as one number with thousands separators.
bool looks_like_thousands(std::string_view text) {
  static const std::regex pattern(R"(^\s*-?\d{1,3}(\s*,\s*\d{3})+\s*$)");
  return std::regex_match(text.begin(), text.end(), pattern);
}

// The index of the bracket that closes the one at `open` ( ( [ { in any pairing ), or npos.
size_t matching_close(std::string_view text, size_t open) {
  int depth = 0;
  for (size_t i = open; i < text.size(); ++i) {
    if (text[i] == '(' || text[i] == '[' || text[i] == '{') ++depth;
    if ((text[i] == ')' || text[i] == ']' || text[i] == '}') && --depth == 0) return i;
  }
  return std::string_view::npos;
}

// Skips spaces and spacing commands (\quad, \qquad, \, \; \!) from `at`.
size_t skip_spacing(std::string_view text, size_t at, size_t end) {
  while (at < end) {
    if (text[at] == ' ') {
      ++at;
    } else if (text.substr(at, 6) == "\\qquad") {
      at += 6;
    } else if (text.substr(at, 5) == "\\quad") {
      at += 5;
    } else if (text.substr(at, 2) == "\\," || text.substr(at, 2) == "\\;" || text.substr(at, 2) == "\\!") {
      at += 2;
    } else {
      break;
    }
  }
  return at;
}

// When text[at, end) is one bracket group "(...)", "[...]" or "\left(...\right)" and nothing after
// it: the positions just inside it (after the opener, at the closer or its \right). Else nullopt.
std::optional<std::pair<size_t, size_t>> whole_group(std::string_view text, size_t at, size_t end) {
  size_t open = at;
  if (text.substr(at, 5) == "\\left") open = at + 5;
  if (open >= end || (text[open] != '(' && text[open] != '[')) return std::nullopt;
  const size_t close = matching_close(text, open);
  if (close == std::string_view::npos || close >= end) return std::nullopt;
  if (text.find_first_not_of(' ', close + 1) < end) return std::nullopt;
  size_t inner_end = close;
  if (close >= 6 && text.substr(close - 6, 6) == "\\right") inner_end = close - 6;
  return std::pair{open + 1, inner_end};
}

// ---- rewritings: the same answer in another exact form ----

struct Variant {
  std::string kind;
  std::string text;
};

// Removes the spaces that carry no meaning: not the one ending a command before a letter or digit
// ("\pi k"), not one between two digits, and not one after a backslash ("\ ").
std::string remove_spaces(std::string_view text) {
  const auto marks = command_letters(text);
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == ' ' && i > 0 && i + 1 < text.size()) {
      const char before = text[i - 1], after = text[i + 1];
      const bool keep = (marks[i - 1] && is_alnum(after)) || (is_digit(before) && is_digit(after)) || before == '\\';
      if (!keep) continue;
    }
    if (text[i] == ' ' && (i == 0 || i + 1 == text.size())) continue;
    out += text[i];
  }
  return out;
}

// Adds a space after each comma and around each '=' and '+' (runs of spaces become one).
std::string add_spaces(std::string_view text) {
  std::string spaced;
  for (char c : text) {
    if (c == '=' || c == '+') {
      spaced += std::string(" ") + c + " ";
    } else {
      spaced += c;
      if (c == ',') spaced += ' ';
    }
  }
  std::string out;
  for (char c : spaced) {
    if (c != ' ' || (!out.empty() && out.back() != ' ')) out += c;
  }
  return trim(out);
}

// Every ( ) as \left( \right), when the parentheses pair with each other (not in "(0,4]").
std::optional<std::string> with_left_right(std::string_view text) {
  if (text.find('(') == std::string_view::npos || text.find("\\left") != std::string_view::npos) return std::nullopt;
  std::vector<char> open;
  for (char c : text) {
    if (c == '(' || c == '[') open.push_back(c);
    if (c == ')' || c == ']') {
      if (open.empty() || open.back() != (c == ')' ? '(' : '[')) return std::nullopt;
      open.pop_back();
    }
  }
  if (!open.empty()) return std::nullopt;
  return replace_all(replace_all(std::string(text), "(", "\\left("), ")", "\\right)");
}

// The exact decimal of numerator/denominator when it has at most 12 digits after the point.
std::optional<std::string> exact_decimal(long long numerator, long long denominator) {
  const bool negative = numerator < 0;
  numerator = std::llabs(numerator);
  for (int digits = 1; digits <= 12; ++digits) {
    const long long scale = static_cast<long long>(std::pow(10, digits));
    if ((numerator * scale) % denominator != 0) continue;
    const long long scaled = numerator * scale / denominator;
    std::string fraction = std::to_string(scaled % scale);
    fraction.insert(0, static_cast<size_t>(digits) - fraction.size(), '0');
    return (negative ? "-" : "") + std::to_string(scaled / scale) + "." + fraction;
  }
  return std::nullopt;
}

// Other exact forms of an answer that is one number: 5 -> 5.0, \frac{10}{2}; 0.25 -> \frac{25}{100};
// 4.5e33 -> 4.5 \times 10^{33}; \frac{1}{4} -> 1/4, \frac{2}{8}, 0.25; 1/3 -> \frac{1}{3}.
std::vector<Variant> number_rewritings(const std::string& answer) {
  static const std::regex integer(R"(^([+-]?)(\d+)$)");
  static const std::regex decimal(R"(^(-?)(\d*)\.(\d+)$)");
  static const std::regex scientific(R"(^(-?\d+(?:\.\d+)?)e([+-]?\d+)$)");
  static const std::regex latex_fraction(R"(^(-?)\\frac\{(-?\d+)\}\{(\d+)\}$)");
  static const std::regex slash_fraction(R"(^(-?\d+)/(\d+)$)");
  std::vector<Variant> variants;
  std::smatch m;
  if (std::regex_match(answer, m, integer) && m[2].length() < 15) {
    const std::string sign = m[1] == "-" ? "-" : "";
    variants.push_back({"integer_as_decimal", sign + m[2].str() + ".0"});
    variants.push_back({"integer_as_fraction", sign + "\\frac{" + std::to_string(2 * std::stoll(m[2])) + "}{2}"});
  } else if (std::regex_match(answer, m, decimal) && m[2].length() + m[3].length() < 15) {
    const std::string digits = m[2].str() + m[3].str();
    variants.push_back({"decimal_as_fraction", m[1].str() + "\\frac{" + std::to_string(std::stoll(digits)) + "}{1" +
                                                   std::string(static_cast<size_t>(m[3].length()), '0') + "}"});
  } else if (std::regex_match(answer, m, scientific)) {
    variants.push_back({"scientific_as_times", m[1].str() + " \\times 10^{" + m[2].str() + "}"});
    if (m[1] == "1") variants.push_back({"scientific_as_power", "10^{" + m[2].str() + "}"});
  } else if (std::regex_match(answer, m, latex_fraction) && m[2].length() < 15 && m[3].length() < 15) {
    const long long numerator = std::stoll(m[2]), denominator = std::stoll(m[3]);
    const std::string sign = m[1];
    variants.push_back({"fraction_as_slash", sign + m[2].str() + "/" + m[3].str()});
    variants.push_back({"fraction_unreduced", sign + "\\frac{" + std::to_string(2 * numerator) + "}{" +
                                                  std::to_string(2 * denominator) + "}"});
    if (denominator != 0 && std::llabs(numerator) < 1000000) {
      if (auto text = exact_decimal(sign == "-" ? -numerator : numerator, denominator)) {
        variants.push_back({"fraction_as_decimal", *text});
      }
    }
  } else if (std::regex_match(answer, m, slash_fraction)) {
    variants.push_back({"slash_as_fraction", "\\frac{" + m[1].str() + "}{" + m[2].str() + "}"});
  }
  return variants;
}

// "x = 5" for an answer that is one value with no variable in it.
std::optional<std::string> with_variable_prefix(const std::string& answer) {
  static const std::regex unsafe(R"([=,<>$%]|\\circ|\\infty|\\geq|\\leq|\\cup)");
  if (std::regex_search(answer, unsafe) || is_prose(answer)) return std::nullopt;
  if (answer.front() == '(' || answer.front() == '[') return std::nullopt;
  const auto marks = command_letters(answer);
  for (size_t i = 0; i < answer.size(); ++i) {
    if (is_letter(answer[i]) && !marks[i]) return std::nullopt;
  }
  return "x = " + answer;
}

// "n+1" for "k=n+1": one plain variable on the left, one value on the right.
std::optional<std::string> without_variable_prefix(const std::string& answer) {
  static const std::regex prefixed(R"(^\s*[A-Za-z]\s*=\s*([^=]+)$)");
  std::smatch m;
  if (!std::regex_match(answer, m, prefixed) || is_prose(answer)) return std::nullopt;
  if (top_level_elements(m[1].str()).size() > 1) return std::nullopt;
  return trim(m[1].str());
}

// The elements of an unordered list in reverse order; a leading "x =" that names the whole list
// ("x = a, b, c") stays in front. Nullopt where that changes nothing or could read as one number.
std::optional<std::string> reordered(const std::string& answer) {
  std::vector<std::string> elements = top_level_list(answer);
  if (elements.size() < 2) return std::nullopt;
  static const std::regex prefixed(R"(^([A-Za-z])\s*=\s*(.+)$)");
  std::smatch m;
  std::string prefix;
  const bool others_plain = std::none_of(elements.begin() + 1, elements.end(),
                                         [](const std::string& e) { return e.find('=') != std::string::npos; });
  if (others_plain && std::regex_match(elements[0], m, prefixed)) {
    prefix = m[1].str() + " = ";
    elements[0] = m[2].str();
  }
  std::reverse(elements.begin(), elements.end());
  const std::string text = prefix + join(elements, ", ");
  if (looks_like_thousands(text) || remove_spaces(text) == remove_spaces(answer)) return std::nullopt;
  return text;
}

// Every rewriting that applies to `gold`; none of them changes its mathematics.
std::vector<Variant> rewritings(const GoldAnswer& gold) {
  const std::string& a = gold.answer;
  const bool prose = is_prose(a);
  const bool has_dollar = a.find('$') != std::string::npos;
  std::vector<Variant> variants;
  auto add = [&](std::string kind, std::string text) {
    if (text != a && !text.empty()) variants.push_back({std::move(kind), std::move(text)});
  };
  if (!has_dollar) add("dollars", "$" + a + "$");
  if (!prose && !has_dollar) {
    add("spaces_removed", remove_spaces(a));
    if (!looks_like_thousands(remove_spaces(a))) add("spaces_added", add_spaces(a));
  }
  if (!prose) {
    if (auto text = with_left_right(a)) add("left_right", *text);
  }
  if (a.find("\\frac") != std::string::npos) add("dfrac", replace_all(a, "\\frac", "\\dfrac"));
  if (a.find("^{\\circ}") != std::string::npos) add("degree_mark", replace_all(a, "^{\\circ}", "^\\circ"));
  if (a.find("\\%") != std::string::npos) {
    add("percent_sign", replace_all(a, "\\%", "%"));
  } else if (a.find('%') != std::string::npos) {
    add("percent_sign", replace_all(a, "%", "\\%"));
  }
  for (auto& variant : number_rewritings(trim(a))) add(variant.kind, variant.text);
  if (auto text = with_variable_prefix(a)) add("variable_prefix_added", *text);
  if (auto text = without_variable_prefix(a)) add("variable_prefix_removed", *text);
  if (gold.unordered_list && !prose) {
    if (auto text = reordered(a)) add("reordered", *text);
  }
  return variants;
}

// ---- perturbations: a nearby answer that is certainly different ----

// Inside a subscript (x_1, C_{2}): changing such a digit may only rename an arbitrary constant.
std::vector<bool> subscript_positions(std::string_view text) {
  std::vector<bool> marks(text.size(), false);
  std::vector<bool> groups;  // open braces: true when the group is a subscript
  for (size_t i = 0; i < text.size(); ++i) {
    const bool inside = std::find(groups.begin(), groups.end(), true) != groups.end();
    marks[i] = inside || (i > 0 && text[i - 1] == '_');
    if (text[i] == '{') groups.push_back(i > 0 && text[i - 1] == '_');
    if (text[i] == '}' && !groups.empty()) groups.pop_back();
  }
  return marks;
}

// The first digit outside subscripts, moved by one (9 -> 8): the leading digit of the first number
// changes by at least 10% of it, beyond any numeric tolerance.
std::optional<std::string> digit_changed(const std::string& answer) {
  const auto subscripts = subscript_positions(answer);
  for (size_t i = 0; i < answer.size(); ++i) {
    if (!is_digit(answer[i]) || subscripts[i]) continue;
    std::string text = answer;
    text[i] = answer[i] == '9' ? '8' : static_cast<char>(answer[i] + 1);
    return text;
  }
  return std::nullopt;
}

// Flips the sign of the leading term of one element: of the right side of an equation (of the left
// when the right is 0), or of the first component of a tuple. Elements whose leading term is 0 are
// passed over (-0 = 0). Flipping an element of a set either leaves a value out or duplicates one,
// so the set changes too.
std::optional<std::string> sign_flipped(const GoldAnswer& gold) {
  const std::string& a = gold.answer;
  if (gold.interval) return std::nullopt;
  for (const auto& [begin, end] : top_level_elements(a)) {
    size_t target = begin, target_end = end;
    int depth = 0;
    for (size_t i = begin; i < end; ++i) {
      if (a[i] == '(' || a[i] == '[' || a[i] == '{') ++depth;
      if (a[i] == ')' || a[i] == ']' || a[i] == '}') --depth;
      if (a[i] == '=' && depth == 0) {
        if (trim(std::string_view(a).substr(i + 1, end - i - 1)) == "0") {
          target_end = i;
        } else {
          target = i + 1;
        }
        break;
      }
    }
    target = skip_spacing(a, target, target_end);
    if (auto group = whole_group(a, target, target_end)) target = skip_spacing(a, group->first, group->second);
    if (target >= target_end) continue;
    if (a[target] == '0' && (target + 1 >= a.size() || (!is_digit(a[target + 1]) && a[target + 1] != '.'))) continue;
    std::string text = a;
    if (a[target] == '-') {
      text.erase(target, 1);
    } else if (a[target] == '+') {
      text[target] = '-';
    } else {
      text.insert(target, "-");
    }
    return text;
  }
  return std::nullopt;
}

// Swaps the first closing bracket of an interval that is not at an infinite end: (0,4] -> (0,4).
std::optional<std::string> bracket_swapped(const GoldAnswer& gold) {
  if (!gold.interval) return std::nullopt;
  const std::string& a = gold.answer;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != ')' && a[i] != ']') continue;
    if (trim(std::string_view(a).substr(0, i)).ends_with("\\infty")) continue;
    std::string text = a;
    text[i] = a[i] == ')' ? ']' : ')';
    return text;
  }
  return std::nullopt;
}

// Adds 1 to the last element (inside it when it is a tuple). Not for intervals, percentages, angles
// in degrees or infinities, where "+1" has no clear reading, and not for decimals of magnitude
// >= 1e5, where +1 would be within the relative tolerance 1e-6 of some graders' reading.
std::optional<std::string> plus_one(const GoldAnswer& gold) {
  const std::string& a = gold.answer;
  static const std::regex unsafe(R"(%|\\circ|\\infty|\$|\.\s*$)");
  if (gold.interval || is_prose(a) || std::regex_search(a, unsafe)) return std::nullopt;
  static const std::regex decimal(R"(^\s*-?(\d*\.\d+|\d+(\.\d+)?e[+-]?\d+)\s*$)");
  if (std::regex_match(a, decimal) && std::abs(std::stod(a)) >= 1e5) return std::nullopt;
  const auto [begin, end] = top_level_elements(a).back();
  size_t at = a.find_last_not_of(' ', end - 1) + 1;
  if (auto group = whole_group(a, skip_spacing(a, begin, end), end)) at = group->second;
  std::string text = a;
  text.insert(at, "+1");
  return text;
}

// Drops the last element of a list, unless it repeats another (then a set would not change).
std::optional<std::string> element_dropped(const std::string& answer) {
  std::vector<std::string> elements = top_level_list(answer);
  if (elements.size() < 2 || is_prose(answer)) return std::nullopt;
  const std::string last = elements.back();
  elements.pop_back();
  if (std::find(elements.begin(), elements.end(), last) != elements.end()) return std::nullopt;
  return join(elements, ",");
}

// Every perturbation that applies to `gold`; each certainly changes its mathematics.
std::vector<Variant> perturbations(const GoldAnswer& gold) {
  std::vector<Variant> variants;
  auto add = [&](std::string kind, const std::optional<std::string>& text) {
    if (text && *text != gold.answer) variants.push_back({std::move(kind), *text});
  };
  add("digit_changed", digit_changed(gold.answer));
  add("sign_flipped", sign_flipped(gold));
  add("bracket_swapped", bracket_swapped(gold));
  add("plus_one", plus_one(gold));
  add("element_dropped", element_dropped(gold.answer));
  return variants;
}

// ---- checking and reporting ----

// Pairs that do not hold, reported with both answers (the first kShown of them).
class Failures {
 public:
  static constexpr size_t kShown = 20;

  void add(const std::string& id, const std::string& kind, const std::string& gold, const std::string& pred) {
    if (lines_.size() < kShown) lines_.push_back("  " + id + " [" + kind + "]: gold '" + gold + "', pred '" + pred + "'");
    ++count_;
  }
  size_t count() const { return count_; }

  std::string report(const std::string& what) const {
    std::ostringstream text;
    text << count_ << " " << what << (count_ > kShown ? " (the first " + std::to_string(kShown) + ")" : "") << ":\n";
    for (const auto& line : lines_) text << line << "\n";
    return text.str();
  }

 private:
  std::vector<std::string> lines_;
  size_t count_ = 0;
};

// Pairs the grader is not expected to get right, with the reason; none so far. Keyed "id/kind".
const std::map<std::string, std::string> kKnownExceptions = {};

enum class Expect { kEquivalent, kDifferent };

// Checks every variant of every answer and reports how many of each kind were checked.
void check_variants(const std::string& set_name, const std::vector<GoldAnswer>& answers, Expect expect) {
  const bool equivalent = expect == Expect::kEquivalent;
  Failures failures;
  std::map<std::string, size_t> per_kind;
  size_t checked = 0, skipped = 0, without_variant = 0;
  for (const auto& gold : answers) {
    const auto variants = equivalent ? rewritings(gold) : perturbations(gold);
    if (variants.empty()) ++without_variant;
    for (const auto& variant : variants) {
      if (kKnownExceptions.contains(gold.id + "/" + variant.kind)) {
        ++skipped;
        continue;
      }
      ++per_kind[variant.kind];
      ++checked;
      if (answers_equivalent(gold.answer, variant.text) != equivalent) {
        failures.add(gold.id, variant.kind, gold.answer, variant.text);
      }
    }
  }
  std::ostringstream counts;
  for (const auto& [kind, count] : per_kind) counts << " " << kind << "=" << count;
  const std::string verdict = equivalent ? "rewritings equivalent" : "perturbations different";
  MESSAGE(set_name << ": " << checked - failures.count() << "/" << checked << " " << verdict << " over "
                   << answers.size() << " answers (" << skipped << " known exceptions skipped);" << counts.str());
  CHECK_MESSAGE(without_variant == 0, without_variant << " " << set_name << " answers got no variant to check");
  CHECK_MESSAGE(failures.count() == 0,
                failures.report(set_name + (equivalent ? " rewritings judged different" : " perturbations judged equivalent")));
}

TEST_SUITE("rewards") {
  TEST_CASE("the last \\boxed{} of every MATH500 solution is equivalent to the row's answer") {
    const auto rows = load_rows("math500.jsonl");
    REQUIRE(rows.size() == 500);
    Failures failures;
    for (const auto& row : rows) {
      const auto id = row.at("id").get<std::string>();
      const auto answer = row.at("answer").get<std::string>();
      const auto boxed = extract_boxed(row.at("solution").get<std::string>());
      if (!boxed) {
        failures.add(id, "no \\boxed{}", answer, "");
      } else if (!answers_equivalent(answer, *boxed)) {
        failures.add(id, "boxed", answer, *boxed);
      }
    }
    MESSAGE("MATH500: " << rows.size() - failures.count() << "/" << rows.size() << " boxed answers equivalent");
    CHECK_MESSAGE(failures.count() == 0, failures.report("MATH500 rows whose boxed answer is not equivalent"));
  }

  TEST_CASE("Minerva answers are equivalent to their exact rewritings") {
    check_variants("Minerva", minerva_answers(), Expect::kEquivalent);
  }

  TEST_CASE("Minerva answers differ from their perturbations") {
    check_variants("Minerva", minerva_answers(), Expect::kDifferent);
  }

  TEST_CASE("OlympiadBench answers are equivalent to their exact rewritings") {
    check_variants("OlympiadBench", olympiadbench_answers(), Expect::kEquivalent);
  }

  TEST_CASE("OlympiadBench answers differ from their perturbations") {
    check_variants("OlympiadBench", olympiadbench_answers(), Expect::kDifferent);
  }

  // The generators themselves, on hand-checked cases: a wrong generator would make the checks above
  // test the wrong thing.
  TEST_CASE("the rewriting generator keeps meaning-bearing spaces and applies only where valid") {
    CHECK(remove_spaces("\\frac{1}{6} \\pi+\\pi k") == "\\frac{1}{6}\\pi+\\pi k");
    CHECK(remove_spaces("2021 \\cdot 505") == "2021\\cdot 505");
    CHECK(remove_spaces("1 2") == "1 2");
    CHECK(add_spaces("a=2,b+1") == "a = 2, b + 1");
    CHECK(add_spaces("+2, x = 1") == "+ 2, x = 1");
    CHECK(with_left_right("f(x)=(x+1)") == "f\\left(x\\right)=\\left(x+1\\right)");
    CHECK_FALSE(with_left_right("t(0,4]").has_value());

    const auto kinds = [](const GoldAnswer& gold) {
      std::map<std::string, std::string> by_kind;
      for (const auto& variant : rewritings(gold)) by_kind[variant.kind] = variant.text;
      return by_kind;
    };
    const auto integer = kinds({"i", "-7"});
    CHECK(integer.at("integer_as_decimal") == "-7.0");
    CHECK(integer.at("integer_as_fraction") == "-\\frac{14}{2}");
    CHECK(integer.at("variable_prefix_added") == "x = -7");
    CHECK(kinds({"d", "0.10"}).at("decimal_as_fraction") == "\\frac{10}{100}");
    CHECK(kinds({"s", "4.5e33"}).at("scientific_as_times") == "4.5 \\times 10^{33}");
    const auto fraction = kinds({"f", "-\\frac{25}{2}"});
    CHECK(fraction.at("fraction_as_slash") == "-25/2");
    CHECK(fraction.at("fraction_unreduced") == "-\\frac{50}{4}");
    CHECK(fraction.at("fraction_as_decimal") == "-12.5");
    CHECK(fraction.at("dfrac") == "-\\dfrac{25}{2}");
    CHECK_FALSE(kinds({"f", "\\frac{1}{3}"}).contains("fraction_as_decimal"));
    CHECK(kinds({"k", "k=n+1"}).at("variable_prefix_removed") == "n+1");
    CHECK_FALSE(kinds({"e", "2 x"}).contains("variable_prefix_added"));  // x = 2x would mean x = 0

    CHECK(kinds({"l", "(1,2),(3,4)", true}).at("reordered") == "(3,4), (1,2)");
    CHECK(kinds({"x", "x=\\frac{1}{6} \\pi, \\frac{1}{3} \\pi", true}).at("reordered") ==
          "x = \\frac{1}{3} \\pi, \\frac{1}{6} \\pi");
    CHECK_FALSE(kinds({"o", "2,4,3", false}).contains("reordered"));  // an ordered list stays in order
    CHECK_FALSE(kinds({"t", "221,8", true}).contains("reordered"));   // "8,221" may read as 8221
  }

  TEST_CASE("the perturbation generator changes the answer's value, not just its form") {
    CHECK(digit_changed("C_{1} e^{t}+2") == "C_{1} e^{t}+3");  // constants' names stay
    CHECK(digit_changed("9.5") == "8.5");
    CHECK_FALSE(digit_changed("E_{1},E_{2}").has_value());

    CHECK(sign_flipped({"s", "5"}) == "-5");
    CHECK(sign_flipped({"s", "-\\frac{1}{2}"}) == "\\frac{1}{2}");
    CHECK(sign_flipped({"s", "0,-1,2"}) == "0,1,2");                   // -0 would equal 0
    CHECK(sign_flipped({"s", "f(x)=x+1"}) == "f(x)=-x+1");
    CHECK(sign_flipped({"s", "y'+y=0"}) == "-y'+y=0");
    CHECK(sign_flipped({"s", "(3,2),(-3,2)"}) == "(-3,2),(-3,2)");
    CHECK(sign_flipped({"s", "(x-1)^{2}"}) == "-(x-1)^{2}");          // not (-x-1)^2 inside a power
    CHECK_FALSE(sign_flipped({"s", "(-\\infty,-5)", false, true}).has_value());

    CHECK(bracket_swapped({"b", "(-\\infty, 0) \\cup\\{1\\}.", false, true}) == "(-\\infty, 0] \\cup\\{1\\}.");
    CHECK(bracket_swapped({"b", "t(0,4]", false, true}) == "t(0,4)");

    CHECK(plus_one({"p", "(1,8,19), (2,7,13)"}) == "(1,8,19), (2,7,13+1)");
    CHECK(plus_one({"p", "2^{1009}"}) == "2^{1009}+1");
    CHECK(plus_one({"p", "671.02"}) == "671.02+1");
    CHECK_FALSE(plus_one({"p", "4.5e33"}).has_value());  // within a relative tolerance
    CHECK_FALSE(plus_one({"p", "62.5%"}).has_value());

    CHECK(element_dropped("1, 3, 5") == "1,3");
    CHECK_FALSE(element_dropped("-2,-2").has_value());
  }
}

}  // namespace
}  // namespace torl::rewards
