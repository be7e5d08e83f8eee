#include "sandbox/protocol.hpp"

#include <doctest/doctest.h>

#include <string>
#include <utility>

namespace torl::sandbox {
namespace {

using config::ToolFeedback;

ExecutionResult ok_result(std::string stdout_text) {
  ExecutionResult result;
  result.status = ExecutionStatus::kOk;
  result.exit_code = 0;
  result.stdout_text = std::move(stdout_text);
  return result;
}

ExecutionResult failed_result(std::string stdout_text, std::string stderr_text) {
  ExecutionResult result;
  result.status = ExecutionStatus::kError;
  result.exit_code = 1;
  result.stdout_text = std::move(stdout_text);
  result.stderr_text = std::move(stderr_text);
  return result;
}

std::string torl(const ExecutionResult& result) {
  return format_observation(result, ToolFeedback::kTorl);
}

// n copies of a UTF-8 character.
std::string repeat(std::string_view piece, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += piece;
  return out;
}

const std::string kTraceback =
    "Traceback (most recent call last):\n"
    "  File \"<string>\", line 1, in <module>\n"
    "NameError: name 'x' is not defined\n";

TEST_SUITE("sandbox") {
  // --- extract_code ---------------------------------------------------------------------------------

  TEST_CASE("a closed python block before the stop string is the code") {
    CHECK(extract_code("Let me compute.\n```python\nx = 1\nprint(x)\n```\n```output") ==
          "x = 1\nprint(x)\n");
  }

  TEST_CASE("an unclosed block is a void call: the stop line does not close it") {
    CHECK_FALSE(extract_code("Let me compute.\n```python\nprint(1)\n```output").has_value());
    CHECK_FALSE(extract_code("```python\nprint(1)\n\n```output").has_value());
  }

  TEST_CASE("text without a python block is a void call") {
    CHECK_FALSE(extract_code("The answer is 2.\n```output").has_value());
    CHECK_FALSE(extract_code("```\nprint(1)\n```\n```output").has_value());
    CHECK_FALSE(extract_code("").has_value());
  }

  TEST_CASE("of several closed blocks the last one is the code") {
    const std::string text =
        "```python\nfirst()\n```\nthen\n```python\nsecond()\n```\nso\n```output";
    CHECK(extract_code(text) == "second()\n");
  }

  TEST_CASE("a closed block followed by an unclosed one is a void call, as in ToRL") {
    CHECK_FALSE(extract_code("```python\nfirst()\n```\nnow\n```python\nsecond()\n```output").has_value());
  }

  TEST_CASE("a fence opening inside an open block restarts the block") {
    CHECK(extract_code("```python\nfirst()\n```python\nsecond()\n```\n```output") == "second()\n");
  }

  TEST_CASE("a fence line opens a block even with text after python") {
    CHECK(extract_code("```python3\na()\n```\n```output") == "a()\n");
    CHECK(extract_code("```python  \nb()\n```\n```output") == "b()\n");
  }

  TEST_CASE("any line starting with three backticks closes a block") {
    CHECK(extract_code("```python\na()\n```  trailing\n```output") == "a()\n");
    CHECK(extract_code("```python\na()\n```text\n```output") == "a()\n");
  }

  TEST_CASE("a python fence not at the start of a line opens nothing") {
    CHECK_FALSE(extract_code("Let me check: ```python\nprint(1)\n```\n```output").has_value());
    CHECK_FALSE(extract_code(" ```python\nprint(1)\n```\n```output").has_value());
  }

  TEST_CASE("a closing fence not at the start of a line does not close") {
    CHECK_FALSE(extract_code("```python\ns = '```'\nprint(s)\n```output").has_value());
    CHECK(extract_code("```python\ns = 'a```'\n```\n```output") == "s = 'a```'\n");
  }

  TEST_CASE("an empty closed block is a void call") {
    CHECK_FALSE(extract_code("```python\n```\n```output").has_value());
  }

  TEST_CASE("blank lines inside a block are kept") {
    CHECK(extract_code("```python\n\na()\n\n```\n```output") == "\na()\n\n");
  }

  TEST_CASE("CRLF text yields the code with its carriage returns") {
    CHECK(extract_code("Compute.\r\n```python\r\nx = 1\r\nprint(x)\r\n```\r\n```output") ==
          "x = 1\r\nprint(x)\r\n");
  }

  TEST_CASE("text without the stop string is scanned the same way") {
    CHECK(extract_code("```python\na()\n```\n") == "a()\n");
    CHECK(extract_code("```python\na()\n```") == "a()\n");
    CHECK_FALSE(extract_code("```python\na()\n").has_value());
  }

  TEST_CASE("the stop string right after a closing fence is removed before scanning") {
    CHECK(extract_code("```python\na()\n``````output") == "a()\n");
  }

  // --- format_observation: tool.feedback torl -------------------------------------------------------

  TEST_CASE("a successful run shows its stripped stdout") {
    CHECK(torl(ok_result("  42\n\n")) == "42");
    CHECK(torl(ok_result("a\nb\n")) == "a\nb");
  }

  TEST_CASE("stdout containing Error keeps only its last line") {
    CHECK(torl(ok_result("step 1\nValueError: bad\nrecovered\n\n")) == "recovered");
    CHECK(torl(ok_result("ZeroDivisionError caught\n")) == "ZeroDivisionError caught");
    // "error" in lower case is not "Error".
    CHECK(torl(ok_result("error one\nerror two\n")) == "error one\nerror two");
  }

  TEST_CASE("a failed run with empty stdout shows the last line of stderr") {
    CHECK(torl(failed_result("", kTraceback)) == "NameError: name 'x' is not defined");
  }

  TEST_CASE("a failed run with empty stdout shows all of a stderr without Error") {
    CHECK(torl(failed_result("", "  warning: a\nexit 3\n")) == "warning: a\nexit 3");
  }

  TEST_CASE("a failed run that printed something shows its stdout, not stderr") {
    CHECK(torl(failed_result("partial 7\n", kTraceback)) == "partial 7");
  }

  TEST_CASE("a run with exit code 0 shows stdout even when it is empty and stderr is not") {
    ExecutionResult result = ok_result("");
    result.stderr_text = "DeprecationWarning: old\n";
    CHECK(torl(result) == kEmptyObservation);
  }

  TEST_CASE("whitespace-only stdout of a failed run is used, not stderr") {
    CHECK(torl(failed_result(" \n", kTraceback)) == kEmptyObservation);
  }

  TEST_CASE("empty output becomes ToRL's timeout text") {
    CHECK(torl(ok_result("")) == "timeout_decorator.timeout_decorator.TimeoutError: 'Timed Out'");
    ExecutionResult timeout;
    timeout.status = ExecutionStatus::kTimeout;
    timeout.exit_code = -1;
    timeout.signal = 9;
    CHECK(torl(timeout) == kEmptyObservation);
  }

  TEST_CASE("whitespace-only output becomes ToRL's timeout text") {
    CHECK(torl(ok_result(" \t\r\n\n ")) == kEmptyObservation);
    CHECK(torl(failed_result("", "\n\n")) == kEmptyObservation);
  }

  TEST_CASE("an Error text whose last line is blank leaves the last non-blank line") {
    // strip() runs before the split, so trailing newlines do not leave an empty last line.
    CHECK(torl(ok_result("x\nKeyError: 1\n\n\n")) == "KeyError: 1");
  }

  TEST_CASE("an observation of 255 characters is kept whole") {
    const std::string text = repeat("a", 255);
    CHECK(torl(ok_result(text)) == text);
  }

  TEST_CASE("an observation of 256 characters keeps its first and last 128 around ...") {
    const std::string text = repeat("a", 128) + repeat("b", 128);
    const std::string shown = torl(ok_result(text));
    CHECK(shown == repeat("a", 128) + "..." + repeat("b", 128));
    CHECK(shown.size() == 259);
  }

  TEST_CASE("a long observation is cut in the middle") {
    const std::string text = "<" + repeat("x", 1000) + ">";
    const std::string shown = torl(ok_result(text));
    CHECK(shown == "<" + repeat("x", 127) + "..." + repeat("x", 127) + ">");
  }

  TEST_CASE("length is counted after stripping") {
    const std::string text = "  " + repeat("a", 255) + "\n\n";
    CHECK(torl(ok_result(text)) == repeat("a", 255));
  }

  TEST_CASE("multi-byte UTF-8 characters are counted as code points") {
    // "é" is 2 bytes, "€" 3, "😀" 4: 255 of them stay whole, 256 are cut on character boundaries.
    for (const std::string piece : {"é", "€", "😀"}) {
      CAPTURE(piece);
      CHECK(torl(ok_result(repeat(piece, 255))) == repeat(piece, 255));
      CHECK(torl(ok_result(repeat(piece, 256))) == repeat(piece, 128) + "..." + repeat(piece, 128));
    }
  }

  TEST_CASE("invalid UTF-8 is replaced with U+FFFD per maximal subsequence, as Python does") {
    const std::string r = "\xEF\xBF\xBD";  // U+FFFD
    CHECK(torl(ok_result("a\xFF" "b")) == "a" + r + "b");
    CHECK(torl(ok_result("a\xE2\x82")) == "a" + r);          // truncated 3-byte sequence: one
    CHECK(torl(ok_result("\xE2\x82" "A")) == r + "A");
    CHECK(torl(ok_result("\xED\xA0\x80")) == r + r + r);     // a surrogate: three
    CHECK(torl(ok_result("\xC0\xAF")) == r + r);             // overlong: two
    CHECK(torl(ok_result("\xF0\x80")) == r + r);
    CHECK(torl(ok_result("\xF4\x90\x80\x80")) == r + r + r + r);  // above U+10FFFF
    CHECK(torl(ok_result("\xF0\x9F\x98")) == r);
  }

  TEST_CASE("replacement characters count as one character each for the cut") {
    const std::string r = "\xEF\xBF\xBD";
    CHECK(torl(ok_result(repeat("\xFF", 255))) == repeat(r, 255));
    CHECK(torl(ok_result(repeat("\xFF", 256))) == repeat(r, 128) + "..." + repeat(r, 128));
  }

  TEST_CASE("Unicode whitespace is stripped as Python's str.strip() does") {
    const std::string spaces =
        "\x1C\x1D\x1E\x1F\xC2\x85\xC2\xA0\xE1\x9A\x80\xE2\x80\x80\xE2\x80\x8A\xE2\x80\xA8"
        "\xE2\x80\xA9\xE2\x80\xAF\xE2\x81\x9F\xE3\x80\x80\v\f";
    CHECK(torl(ok_result(spaces + "42" + spaces)) == "42");
    CHECK(torl(ok_result(spaces)) == kEmptyObservation);
  }

  TEST_CASE("characters Python does not count as whitespace are kept") {
    // U+200B ZERO WIDTH SPACE and U+FEFF are not str.isspace().
    CHECK(torl(ok_result("\xE2\x80\x8B" "42\xEF\xBB\xBF")) == "\xE2\x80\x8B" "42\xEF\xBB\xBF");
  }

  TEST_CASE("a long traceback line containing Error is cut after taking the last line") {
    const std::string message = "ValueError: " + repeat("v", 300);
    const std::string shown = torl(failed_result("", "Traceback\n" + message + "\n"));
    CHECK(shown == message.substr(0, 128) + "..." + repeat("v", 128));
  }

  // --- format_observation: tool.feedback full -------------------------------------------------------

  TEST_CASE("full feedback shows stdout, stderr and the failure status") {
    const std::string shown = format_observation(failed_result("partial 7\n", kTraceback),
                                                 ToolFeedback::kFull);
    CHECK(shown == "partial 7\n" + kTraceback + "[status: error, exit code 1]");
  }

  TEST_CASE("full feedback of an ok run has no status line") {
    ExecutionResult result = ok_result("42\n");
    result.stderr_text = "warning: slow";
    CHECK(format_observation(result, ToolFeedback::kFull) == "42\nwarning: slow");
    CHECK(format_observation(ok_result(" 7 \n"), ToolFeedback::kFull) == "7");
    CHECK(format_observation(ok_result(""), ToolFeedback::kFull).empty());
  }

  TEST_CASE("full feedback starts each part on its own line") {
    const std::string shown = format_observation(failed_result("no newline", "err"), ToolFeedback::kFull);
    CHECK(shown == "no newline\nerr\n[status: error, exit code 1]");
  }

  TEST_CASE("full feedback names timeouts and signals") {
    ExecutionResult timeout;
    timeout.status = ExecutionStatus::kTimeout;
    timeout.exit_code = -1;
    timeout.signal = 9;
    timeout.stdout_text = "1\n2\n";
    CHECK(format_observation(timeout, ToolFeedback::kFull) == "1\n2\n[status: timeout]");

    ExecutionResult killed;
    killed.status = ExecutionStatus::kKilled;
    killed.exit_code = -1;
    killed.signal = 11;
    CHECK(format_observation(killed, ToolFeedback::kFull) == "[status: killed, signal 11]");
  }

  TEST_CASE("full feedback is cut like torl, keeping the status line at the end") {
    const std::string shown =
        format_observation(failed_result(repeat("o", 500), "E"), ToolFeedback::kFull);
    const std::string tail = "\nE\n[status: error, exit code 1]";
    CHECK(shown == repeat("o", 128) + "..." + repeat("o", 128 - tail.size()) + tail);
  }

  TEST_CASE("full feedback replaces invalid UTF-8 too") {
    CHECK(format_observation(failed_result("", "\xFF"), ToolFeedback::kFull) ==
          "\xEF\xBF\xBD\n[status: error, exit code 1]");
  }

  // --- format_observation: tool.feedback none -------------------------------------------------------

  TEST_CASE("no-error feedback shows a successful run as torl does") {
    CHECK(format_observation(ok_result(" 42\n"), ToolFeedback::kNone) == "42");
    CHECK(format_observation(ok_result("x\nKeyError caught\n"), ToolFeedback::kNone) == "KeyError caught");
    CHECK(format_observation(ok_result(""), ToolFeedback::kNone) == kEmptyObservation);
  }

  TEST_CASE("no-error feedback masks every failure with one fixed text") {
    CHECK(format_observation(failed_result("", kTraceback), ToolFeedback::kNone) ==
          kMaskedFailureObservation);
    CHECK(format_observation(failed_result("partial 7\n", kTraceback), ToolFeedback::kNone) ==
          kMaskedFailureObservation);
    ExecutionResult timeout;
    timeout.status = ExecutionStatus::kTimeout;
    CHECK(format_observation(timeout, ToolFeedback::kNone) == "Execution failed.");
  }

  // --- observation_suffix ---------------------------------------------------------------------------

  TEST_CASE("the observation suffix wraps the observation in newlines and a closing fence") {
    CHECK(observation_suffix("42") == "\n42\n```\n");
    CHECK(observation_suffix("") == "\n\n```\n");
  }
}

}  // namespace
}  // namespace torl::sandbox
