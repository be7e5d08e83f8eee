#!/usr/bin/python3
"""expect.py [--exit CODE] REGEX COMMAND [ARG]...: a command-line test. Runs COMMAND, shows its output
(stdout and stderr together), and passes only when it exits with CODE (default 0) and that output
matches REGEX (Python syntax; `.` also matches newlines; searched anywhere unless anchored with ^).
CTest's PASS_REGULAR_EXPRESSION alone would ignore the exit code: a command that printed the right
lines and then crashed would pass."""
import re
import subprocess
import sys

args = sys.argv[1:]
expected = 0
if args[:1] == ["--exit"] and len(args) > 1:
    expected, args = int(args[1]), args[2:]
if len(args) < 2:
    sys.exit("usage: expect.py [--exit CODE] REGEX COMMAND [ARG]...")
regex, command = args[0], args[1:]
ran = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
output = ran.stdout.decode("utf-8", "replace")
sys.stdout.write(output)
if ran.returncode != expected:
    sys.exit(f"expect.py: the command exited with {ran.returncode}" +
             (f" (signal {-ran.returncode})" if ran.returncode < 0 else "") + f", not {expected}")
if not re.search(regex, output, re.DOTALL):
    sys.exit(f"expect.py: the output does not match {regex!r}")
print(f"expect.py: exit {expected} and the output matches")
