#!/usr/bin/env python3
"""Math-Verify (HF's answer checker) as the reference beside torl's grader, on the same pairs.

    math_verify_grade.py < pairs.jsonl
        {"gold", "pred"} answers (already extracted, as torl grade bench reads them) on stdin; one
        {"equivalent": bool} line per pair on stdout, in order, then {"seconds": S}, the time spent in
        Math-Verify (one thread). `torl grade bench --math-verify` runs it.

    math_verify_grade.py --cases tests/rewards/equivalence_cases.tsv --torl build/torl
        the grader's test cases (gold TAB pred TAB expected 0/1 TAB kind) through both checkers: the
        cases where either one differs from the expected verdict, and per kind and in all how often each
        agrees with it. Exit 1 when a checker gave no verdict for some case.

The gold answer is given to Math-Verify as $gold$ and the prediction as \\boxed{pred}, the forms its
documentation shows. Runs with the project's .venv/bin/python (tools/setup installs math-verify).
"""
import argparse
import collections
import json
import subprocess
import sys
import time

from math_verify import parse, verify


def math_verify_equivalent(gold, pred):
    return bool(verify(parse(f"${gold}$"), parse(f"\\boxed{{{pred}}}")))


def grade_stdin():
    pairs = [json.loads(line) for line in sys.stdin if line.strip()]
    start = time.perf_counter()
    verdicts = [math_verify_equivalent(pair["gold"], pair["pred"]) for pair in pairs]
    seconds = time.perf_counter() - start
    for verdict in verdicts:
        print(json.dumps({"equivalent": verdict}))
    print(json.dumps({"seconds": seconds}))
    return 0


def torl_verdicts(torl, cases):
    lines = "".join(json.dumps({"gold": gold, "pred": pred}) + "\n" for gold, pred, _, _ in cases)
    done = subprocess.run([torl, "grade", "--jsonl", "-"], input=lines, capture_output=True, text=True)
    verdicts = [json.loads(line)["equivalent"] for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or len(verdicts) != len(cases):
        sys.exit(f"math_verify_grade: torl grade --jsonl gave {len(verdicts)} verdicts for {len(cases)} cases "
                 f"(exit {done.returncode}): {done.stderr.strip()}")
    return verdicts


def compare_cases(cases_file, torl):
    with open(cases_file, encoding="utf-8") as f:
        cases = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    ours = torl_verdicts(torl, cases)
    start = time.perf_counter()
    theirs = [math_verify_equivalent(gold, pred) for gold, pred, _, _ in cases]
    seconds = time.perf_counter() - start
    if len(theirs) != len(cases):
        sys.exit("math_verify_grade: Math-Verify gave no verdict for some cases")
    per_kind = collections.defaultdict(lambda: [0, 0, 0])  # cases, torl right, math-verify right
    print("| gold | pred | expected | torl | math-verify |\n|---|---|---|---|---|")
    for (gold, pred, expected, kind), a, b in zip(cases, ours, theirs):
        want = expected == "1"
        counts = per_kind[kind]
        counts[0] += 1
        counts[1] += a == want
        counts[2] += b == want
        if a != want or b != want:
            print(f"| `{gold}` | `{pred}` | {int(want)} | {int(a)} | {int(b)} |")
    print("\n| kind | cases | torl agrees | math-verify agrees |\n|---|---|---|---|")
    for kind, (n, a, b) in sorted(per_kind.items()):
        print(f"| {kind} | {n} | {a} | {b} |")
    total = len(cases)
    a, b = sum(c[1] for c in per_kind.values()), sum(c[2] for c in per_kind.values())
    print(f"| all | {total} | {a} ({100 * a / total:.1f}%) | {b} ({100 * b / total:.1f}%) |")
    print(f"\nMath-Verify: {total / seconds:.0f} grades/s on one thread ({seconds:.2f} s for {total} cases)")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases")
    parser.add_argument("--torl")
    args = parser.parse_args()
    if args.cases:
        if not args.torl:
            parser.error("--cases needs --torl BINARY")
        return compare_cases(args.cases, args.torl)
    return grade_stdin()


if __name__ == "__main__":
    sys.exit(main())
