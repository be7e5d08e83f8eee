# The warm Python process of one sandbox worker (sandbox/fork_server.hpp starts it, inside bubblewrap).
#
# It imports numpy and sympy once, then serves snippets forever over the control socket on fd 3:
#   torl -> here:  {"code": "..."}  + SCM_RIGHTS [stdout_fd, stderr_fd]   run one snippet
#                  {"kill": true}                                         end the running snippet now
#   here -> torl:  {"ready": true}                                        once, after the imports
#                  {"exit_code": N, "signal": S, "memory": bool}          once per snippet
# Each snippet runs in a fresh child forked from this process, in its own session, with rlimits; when
# it ends (or is killed) every other process in the sandbox is killed too, and /tmp is emptied, so no
# state passes from one call to the next. One JSON object per line in both directions.
import gc
import json
import os
import select
import signal
import socket
import sys

SETTINGS = json.loads(sys.argv[1])
CONTROL_FD = 3
MEMORY_MARK = b"M"


def preload():
    """Imports and warms what snippets use most, so that a forked child pays for none of it."""
    import cmath, collections, decimal, fractions, functools, itertools, math, random, re  # noqa
    import statistics, string, traceback, io, atexit, threading, resource, shutil  # noqa
    import numpy
    import sympy
    x, y = sympy.symbols("x y")
    sympy.solve(x**2 - 2, x)
    sympy.simplify(sympy.sin(x) ** 2 + sympy.cos(x) ** 2)
    sympy.integrate(x**2 * sympy.exp(x), x)
    sympy.factorint(360)
    sympy.expand((x + y) ** 3)
    sympy.N(sympy.pi, 30)
    sympy.Matrix([[1, 2], [3, 4]]).inv()
    sympy.Rational(1, 3) + sympy.sqrt(2)
    sympy.binomial(10, 3)
    sympy.isprime(97)
    sympy.limit(sympy.sin(x) / x, x, 0)
    sympy.summation(x, (x, 1, 10))
    numpy.linalg.inv(numpy.eye(3) * 2.0)
    numpy.random.default_rng(0).random(4)


def set_limits():
    import resource
    mb = 1024 * 1024
    limits = [
        (resource.RLIMIT_AS, SETTINGS["memory_mb"] * mb),
        (resource.RLIMIT_CPU, SETTINGS["cpu_seconds"]),
        (resource.RLIMIT_FSIZE, SETTINGS["file_mb"] * mb),
        (resource.RLIMIT_NPROC, SETTINGS["max_processes"]),
        (resource.RLIMIT_CORE, 0),
    ]
    for which, value in limits:
        resource.setrlimit(which, (value, value))


def run_child(code, out_fd, err_fd, status_fd):
    """In the forked child: become the snippet's process and never return.

    Every page the child touches is copied from the parent, so it does as little as it can: stdin is
    already /dev/null, sys.stdout and sys.stderr already wrap descriptors 1 and 2 (now the pipes), and
    the working directory is already the sandbox's."""
    exit_code = 1
    try:
        os.setsid()
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        for fd in (out_fd, err_fd, CONTROL_FD):
            if fd > 2:
                os.close(fd)
        if SETTINGS["rlimits"]:
            set_limits()
        if "random" in code:
            import numpy
            numpy.random.seed()  # a fresh interpreter draws a fresh seed (Python's random reseeds itself)
        import atexit
        atexit._clear()  # the handlers of this server's imports are not the snippet's
        sys.argv = ["-c"]
        exit_code = execute(code, status_fd)
    finally:
        os._exit(exit_code)


def execute(code, status_fd):
    """Runs `code` as `python3 -c` would and returns the process exit code."""
    import atexit
    import builtins
    import traceback
    exit_code = 0
    try:
        exec(compile(code, "<string>", "exec"), {"__name__": "__main__", "__builtins__": builtins})
    except SystemExit as e:
        exit_code = exit_code_of(e)
    except MemoryError:
        os.write(status_fd, MEMORY_MARK)
        print_exception(traceback)
        exit_code = 1
    except BaseException:
        print_exception(traceback)
        exit_code = 1
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()  # wait for non-daemon threads, as the interpreter does at exit
        atexit._run_exitfuncs()
    except BaseException:
        print_exception(traceback)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            exit_code = exit_code or 120  # the interpreter's code when flushing stdout fails
    return exit_code


def exit_code_of(e):
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code & 0xFF
    try:
        print(e.code, file=sys.stderr)
    except BaseException:
        pass
    return 1


def print_exception(traceback):
    """Prints the current exception as `python3 -c` would: without this file's frames."""
    try:
        kind, value, tb = sys.exc_info()
        while tb is not None and tb.tb_frame.f_code.co_filename == "<string>" and \
                tb.tb_frame.f_code.co_name in ("execute", "run_child"):
            tb = tb.tb_next
        traceback.print_exception(kind, value, tb)
    except BaseException:
        pass


def kill_everything_else():
    """SIGKILLs every process in this sandbox but bubblewrap's init (pid 1) and us, until none is left."""
    me = os.getpid()
    for _ in range(100):
        others = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]
        if not others:
            return
        for pid in others:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        reap()


def reap():
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def empty_workdir():
    import shutil
    workdir = SETTINGS["workdir"]
    for name in os.listdir(workdir):
        path = os.path.join(workdir, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            pass


class Control:
    """Newline-delimited JSON over the control socket, with file descriptors attached to requests."""

    def __init__(self):
        self.sock = socket.socket(fileno=CONTROL_FD)
        self.buffer = b""
        self.fds = []

    def send(self, message):
        self.sock.sendall(json.dumps(message).encode() + b"\n")

    def receive(self):
        """The next message, or None when torl has gone."""
        while b"\n" not in self.buffer:
            data, fds, _, _ = socket.recv_fds(self.sock, 1 << 20, 4)
            self.fds.extend(fds)
            if not data:
                return None
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def has_buffered_line(self):
        return b"\n" in self.buffer


def wait_for_child(control, pid):
    """Waits until the child exits; a kill request (or torl going away) kills it first."""
    pidfd = os.pidfd_open(pid)
    try:
        while True:
            if not control.has_buffered_line():
                ready, _, _ = select.select([control.sock, pidfd], [], [])
                if pidfd in ready:
                    break
            message = control.receive()
            if message is None or message.get("kill"):
                kill_snippet(pid)
                if message is None:
                    sys.exit(0)
    finally:
        os.close(pidfd)
    _, status = os.waitpid(pid, 0)
    return status


def kill_snippet(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    if SETTINGS["pid_namespace"]:
        kill_everything_else()


def serve():
    control = Control()
    os.chdir(SETTINGS["workdir"])
    preload()
    gc.collect()
    gc.freeze()  # keep the collector from touching (and so copying) the parent's pages in children
    control.send({"ready": True})
    while True:
        message = control.receive()
        if message is None:
            return
        if "code" not in message:
            continue  # a kill for a snippet that has already ended
        out_fd, err_fd = control.fds[:2]
        del control.fds[:2]
        status_read, status_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(status_read)
            run_child(message["code"], out_fd, err_fd, status_write)
        os.close(out_fd)
        os.close(err_fd)
        os.close(status_write)
        status = wait_for_child(control, pid)
        if SETTINGS["pid_namespace"]:
            kill_everything_else()
        else:
            kill_snippet(pid)
        empty_workdir()
        os.set_blocking(status_read, False)
        try:
            memory = MEMORY_MARK in os.read(status_read, 64)
        except BlockingIOError:
            memory = False
        os.close(status_read)
        control.send({
            "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0,
            "memory": memory,
        })


if __name__ == "__main__":
    serve()
