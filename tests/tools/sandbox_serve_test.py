#!/usr/bin/python3
"""sandbox_serve_test.py TORL: `torl sandbox serve` as a separate process, driven over HTTP with only
the standard library, as a SandboxFusion client would (veRL's scoring sends stdin and run_timeout,
its tool sends files; the SDK checks /v1/ping). Starts the server on a free port, reads the address
from its stderr, checks each point of the API, stops it with SIGTERM and checks that it exits 0.
Prints "sandbox serve api: every check passed" at the end; any failed check exits non-zero."""
import base64
import json
import queue
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

TIMEOUT_MS, MEMORY_MB, OUTPUT_CAP = 3000, 512, 1000
DEADLINE_S = 120  # for the server to start, and for each answer: a hang fails instead of blocking CI

failures = []
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


def check(condition, what):
    print(("ok      " if condition else "FAILED  ") + what, flush=True)
    if not condition:
        failures.append(what)


def start_server(torl):
    command = [torl, "sandbox", "serve", "--listen", "127.0.0.1:0", "--workers", "2",
               "--set", f"tool.timeout_ms={TIMEOUT_MS}", "--set", f"tool.memory_mb={MEMORY_MB}",
               "--set", f"tool.max_output_bytes={OUTPUT_CAP}"]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines = queue.Queue()

    def read_stderr():  # keeps draining, so that the server never blocks on a full pipe
        for line in server.stderr:
            sys.stdout.write("server: " + line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read_stderr, daemon=True).start()
    while True:
        line = lines.get(timeout=DEADLINE_S)
        if line is None:
            sys.exit(f"the server exited before listening (exit code {server.wait()})")
        if "listening on http://" in line:
            url = line.split("listening on ")[1].split()[0]  # http://HOST:PORT
            return server, url


def call(url, body=None, method=None, raw=None):
    """(HTTP status, content type, body text)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with OPENER.open(request, timeout=DEADLINE_S) as answer:
            return answer.status, answer.headers.get("Content-Type"), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type"), error.read().decode()


def main():
    torl = sys.argv[1]
    server, base = start_server(torl)
    try:
        run_checks(base)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            server.kill()
            code = "none (killed after it ignored SIGTERM)"
    check(code == 0, f"SIGTERM ends the server with exit code 0 (got {code})")
    if failures:
        sys.exit(f"sandbox serve api: {len(failures)} checks failed: {failures}")
    print("sandbox serve api: every check passed")


def run(base, path="/run_code", **fields):
    fields.setdefault("language", "python")
    status, content_type, text = call(base + path, fields)
    if status != 200:
        check(False, f"POST {path} {fields} answered {status}: {text}")
        return {"run_result": {}, "files": {}}
    return json.loads(text)


def problem_of(base, body=None, raw=None):
    status, content_type, text = call(base + "/run_code", body, raw=raw)
    if status != 422:
        return {"status": status, "text": text}
    detail = json.loads(text).get("detail", [])
    return detail[0] if len(detail) == 1 else {"detail": detail}


def run_checks(base):
    # ping and the status endpoint
    status, content_type, text = call(base + "/v1/ping")
    check((status, content_type, text) == (200, "application/json", '"pong"'), f"GET /v1/ping is the JSON string \"pong\" ({status}, {content_type}, {text})")
    status, _, text = call(base + "/v1/status")
    load = json.loads(text) if status == 200 else {}
    check(load.get("workers") == 2 and load.get("queued") == 0 and load.get("timeout_ms") == TIMEOUT_MS,
          f"GET /v1/status shows 2 workers, nothing queued, the server's limits ({text})")

    # the answer's shape, and the trailing slash
    answer = run(base, code="print(6 * 7)")
    check(answer.get("status") == "Success" and answer["run_result"].get("stdout") == "42\n", "python runs")
    check(all(key in answer for key in ("compile_result", "executor_pod_name", "files")) and answer["compile_result"] is None,
          "the answer has compile_result (null), executor_pod_name and files")
    check(run(base, "/run_code/", code="print(1)").get("status") == "Success", "POST /run_code/ is served")

    # stdin
    answer = run(base, code="import sys\nprint(sum(int(t) for t in sys.stdin.read().split()))", stdin="1 2\n3\n")
    check(answer["run_result"].get("stdout") == "6\n", "stdin reaches the program")

    # limits from the request
    answer = run(base, code="import time\ntime.sleep(1.5)\nprint('late')", run_timeout=0.3)
    check(answer["run_result"].get("status") == "TimeLimitExceeded", "a run_timeout shorter than the server's times out")
    answer = run(base, code="while True: pass", run_timeout=1000)
    check(answer["run_result"].get("status") == "TimeLimitExceeded", "a run_timeout longer than the server's is capped")
    answer = run(base, code="x = bytearray(300 * 1024 * 1024)\nprint('allocated')", memory_limit_MB=200)
    check("MemoryError" in (answer["run_result"].get("stderr") or ""), "a tighter memory_limit_MB applies")
    answer = run(base, code="x = bytearray(700 * 1024 * 1024)\nprint('allocated')", memory_limit_MB=100000)
    check("MemoryError" in (answer["run_result"].get("stderr") or ""), "a looser memory_limit_MB is capped at the server's")
    answer = run(base, code="print('fine')", run_timeout="5", memory_limit_MB=1024.0)
    check(answer.get("status") == "Success", "run_timeout \"5\" and memory_limit_MB 1024.0 are accepted")

    # files both ways, and escaping paths
    encode = lambda text: base64.b64encode(text.encode()).decode()
    answer = run(base, code="import os\nos.makedirs('out', exist_ok=True)\n"
                            "open('out/result.txt', 'w').write(open('data/in.txt').read()[::-1])",
                 files={"data/in.txt": encode("abc")}, fetch_files=["out/result.txt", "missing.txt"])
    check(answer.get("files") == {"out/result.txt": encode("cba")}, f"files are written and fetch_files come back ({answer.get('files')})")
    problem = problem_of(base, {"code": "x", "language": "python", "files": {"../escape.txt": encode("x")}})
    check(problem.get("loc") == ["body", "files", "../escape.txt"], f"a file path leaving the working directory is 422 naming it ({problem})")
    problem = problem_of(base, {"code": "x", "language": "python", "fetch_files": ["/etc/passwd"]})
    check(problem.get("loc") == ["body", "fetch_files", 0], f"an absolute fetch_files path is 422 naming it ({problem})")

    # __file__ and sys.argv
    answer = run(base, code="import os, sys\nprint(__file__ == sys.argv[0], os.path.dirname(__file__) == os.getcwd())")
    check(answer["run_result"].get("stdout") == "True True\n", "__file__ is sys.argv[0], a file in the working directory")

    # output past the cap: the same answer every time
    answers = [run(base, code="import sys\nsys.stdout.write('x' * 100000)\nsys.exit(3)") for _ in range(5)]
    shapes = {(a.get("status"), a["run_result"].get("status"), a["run_result"].get("return_code"),
               len(a["run_result"].get("stdout") or ""), a.get("truncated")) for a in answers}
    check(shapes == {("Failed", "Finished", 3, OUTPUT_CAP, True)}, f"output past the cap: cut, flagged, real exit status, 5 times alike ({shapes})")

    # validation errors
    problem = problem_of(base, {"language": "python"})
    check(problem.get("type") == "missing" and problem.get("loc") == ["body", "code"], f"missing code is 422 ({problem})")
    problem = problem_of(base, {"code": 7, "language": "python"})
    check(problem.get("type") == "string_type", f"code of the wrong type is 422 ({problem})")
    problem = problem_of(base, {"code": "x", "language": "klingon"})
    check(problem.get("type") == "literal_error" and problem.get("loc") == ["body", "language"], f"an unknown language is 422 ({problem})")
    problem = problem_of(base, {"code": "x", "language": "python", "memory_limit_MB": "lots"})
    check(problem.get("type") == "int_parsing", f"a bad number is 422 ({problem})")
    problem = problem_of(base, raw=b"{not json")
    check(problem.get("type") == "json_invalid", f"a body that is not JSON is 422 ({problem})")
    answer = run(base, code="int main() {}", language="cpp")
    check(answer.get("status") == "SandboxError" and "python" in answer.get("message", ""), "another SandboxFusion language is a SandboxError")

    # more requests than workers: all answered, and the status shows them counted
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda i: run(base, code=f"print({i})"), range(16)))
    check([a["run_result"].get("stdout") for a in answers] == [f"{i}\n" for i in range(16)], "16 requests at once on 2 workers are all answered")
    status, _, text = call(base + "/v1/status")
    load = json.loads(text)
    check(load.get("running") == 0 and load.get("queued") == 0 and load.get("executions", 0) >= 30,
          f"GET /v1/status counts the executions and shows nothing left running or queued ({text})")


if __name__ == "__main__":
    main()
