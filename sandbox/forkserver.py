# The warm Python processes of one sandbox worker (sandbox/fork_server.hpp starts this, inside
# bubblewrap). It serves snippets forever over the control socket on fd 3:
#   torl -> here:  {"code": "..."}  + SCM_RIGHTS [stdout_fd, stderr_fd]   run one snippet; optional:
#                    "stdin": "...", "files": {path: base64}, "fetch_files": [path],
#                    "as_file": true, "memory_mb": N, "cpu_seconds": N (tighter limits)
#                  {"kill": true}                                         end the running snippet now
#   here -> torl:  {"ready": true}                                        after the imports, and after
#                                                                         each snippet's clean-up
#                  {"exit_code": N, "signal": S, "memory": bool,          once per snippet, as soon as it
#                   "worker_died": bool, "files": {path: base64}}         has ended (before the clean-up);
#                                                                         "files" when fetch_files was asked
#                  {"worker_died": true}                                  instead of "ready": the clean-up
#                                                                         failed, and this worker exits
# One JSON object per line in both directions. The result goes out before the clean-up so that the
# clean-up's time is neither waited for by the caller nor counted against the snippet's timeout.
#
# Each snippet runs in a fresh child forked from a warm zygote, in its own session, with rlimits; when
# it ends (or is killed) every other process it started is killed and the work folder is emptied, so
# no state passes from one call to the next. There are two zygotes: this process, with numpy and sympy
# imported and exercised, and a lean one forked from it before those imports. Forking costs in
# proportion to the parent's memory (here about 2.5 ms for the heavy zygote, 0.5 ms for the lean one),
# so a snippet that names neither numpy nor sympy (nor mpmath) is run by the lean zygote.
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
HEAVY_MODULES = ("numpy", "sympy", "mpmath")


def preload_light():
    """The standard library that snippets use most; shared by both zygotes."""
    import atexit, cmath, collections, decimal, fractions, functools, io, itertools, math  # noqa
    import random, re, resource, shutil, statistics, string, threading, traceback  # noqa


def preload_heavy():
    """numpy and sympy, imported and exercised so that a child pays for none of it."""
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


def uses_heavy_modules(code):
    return any(name in code for name in HEAVY_MODULES)


def prctl(option, value):
    import ctypes
    if ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option})")


def set_dumpable(flag):
    """A non-dumpable process cannot have its memory read or written through /proc/PID/mem, nor its
    descriptors taken with pidfd_getfd, by another process of the same uid: the zygotes make
    themselves so, since snippets run as the same uid as they do."""
    PR_SET_DUMPABLE = 4
    prctl(PR_SET_DUMPABLE, int(flag))


# ---- the child: one snippet ----

def set_limits(request):
    import resource
    mb = 1024 * 1024
    limits = [
        (resource.RLIMIT_AS, request.get("memory_mb", SETTINGS["memory_mb"]) * mb),
        (resource.RLIMIT_CPU, request.get("cpu_seconds", SETTINGS["cpu_seconds"])),
        (resource.RLIMIT_FSIZE, SETTINGS["file_mb"] * mb),
        (resource.RLIMIT_NPROC, SETTINGS["max_processes"]),
        (resource.RLIMIT_CORE, 0),
    ]
    for which, value in limits:
        resource.setrlimit(which, (value, value))


def inside_workdir(path):
    """The absolute path of `path` (relative to the work folder), or None when it leads outside it,
    also through a symlink. torl has checked the path's form already; this is the second lock."""
    root = os.path.realpath(SETTINGS["workdir"])
    full = os.path.realpath(os.path.join(root, path))
    return full if full.startswith(root + os.sep) else None


def prepare_child(request):
    """The request's stdin, files and code file, made before the limits apply. Returns the path of the
    code file, or None when the code runs as with `python -c`."""
    if "stdin" in request:
        # A memfd holds all of stdin at once: no writer to wait for, and EOF at its end.
        fd = os.memfd_create("stdin")
        write_all(fd, request["stdin"].encode("utf-8", "surrogateescape"))
        os.lseek(fd, 0, os.SEEK_SET)
        os.dup2(fd, 0)
        os.close(fd)
    for path, content in request.get("files", {}).items():
        import binascii
        full = inside_workdir(path)
        if full is None:
            raise OSError(f"sandbox: file '{path}' is outside the working directory")
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(binascii.a2b_base64(content))
    if not request.get("as_file"):
        return None
    while True:  # a name no request file has taken
        path = os.path.join(SETTINGS["workdir"], f"snippet_{os.urandom(4).hex()}.py")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:
            continue
    write_all(fd, request["code"].encode("utf-8", "surrogateescape"))  # no file object: it costs 0.3 ms
    os.close(fd)
    return path


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def fetch_files(paths):
    """The regular files among `paths` inside the work folder, base64-encoded; others are left out."""
    import binascii
    files = {}
    for path in paths:
        full = inside_workdir(path)
        if full is None or not os.path.isfile(full):
            continue
        try:
            with open(full, "rb") as f:
                files[path] = binascii.b2a_base64(f.read(), newline=False).decode()
        except OSError:
            pass
    return files


def run_child(request, out_fd, err_fd, status_fd):
    """In the forked child: become the snippet's process and never return.

    Every page the child touches is copied from the parent, so it does as little as it can: stdin is
    already /dev/null, sys.stdout and sys.stderr already wrap descriptors 1 and 2 (now the pipes), and
    the working directory is already the sandbox's."""
    exit_code = 1
    code = request["code"]
    try:
        os.setsid()
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        os.closerange(3, status_fd)  # the zygote's sockets and pipes are not the snippet's
        os.closerange(status_fd + 1, 1 << 20)
        set_dumpable(True)  # its own /proc/self works as in any process
        PR_SET_PDEATHSIG = 1
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with its zygote, with or without a PID namespace
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            filename = prepare_child(request) if len(request) > 1 else None
        except (OSError, ValueError) as e:
            os.write(2, f"sandbox: could not prepare the snippet's stdin and files: {e}\n".encode())
            raise
        if SETTINGS["rlimits"]:
            try:
                set_limits(request)
            except OSError as e:
                os.write(2, f"sandbox: could not set the snippet's limits: {e}\n".encode())
                raise
        if "random" in code and "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()  # fresh, as in a new interpreter (random reseeds itself)
        import atexit
        atexit._clear()  # the handlers of the zygote's imports are not the snippet's
        sys.argv = [filename or "-c"]
        if filename:
            sys.path.insert(0, os.path.dirname(filename))
        exit_code = execute(code, filename, status_fd)
    finally:
        os._exit(exit_code)


def execute(code, filename, status_fd):
    """Runs `code` as `python3 -c` would (or `python3 FILENAME`, when given) and returns the process
    exit code."""
    import atexit
    import builtins
    import traceback
    exit_code = 0
    try:
        namespace = {"__name__": "__main__", "__builtins__": builtins}
        if filename:
            namespace.update(__file__=filename, __cached__=None)
        exec(compile(code, filename or "<string>", "exec"), namespace)
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


# ---- the zygotes ----

class Channel:
    """Newline-delimited JSON over a stream socket, with file descriptors attached to requests."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = b""
        self.fds = []

    def fileno(self):
        return self.sock.fileno()

    def send(self, message, fds=()):
        data = json.dumps(message).encode() + b"\n"
        if fds:
            sent = socket.send_fds(self.sock, [data], list(fds))
            data = data[sent:]
        self.sock.sendall(data)

    def receive(self):
        """The next message, or None when the other side has gone."""
        while b"\n" not in self.buffer:
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, 1 << 20, 4)
            except OSError:
                return None
            self.fds.extend(fds)
            if not data:
                return None
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def has_buffered_line(self):
        return b"\n" in self.buffer

    def take_fds(self, count):
        taken, self.fds = self.fds[:count], self.fds[count:]
        return taken


def run_snippet(channel, request, out_fd, err_fd):
    """Forks a child that runs the request's code and waits for it to end; a kill request on `channel`
    (or the channel closing) kills its process group first. Returns the result message."""
    status_read, status_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(status_read)
        run_child(request, out_fd, err_fd, status_write)
    os.close(out_fd)
    os.close(err_fd)
    os.close(status_write)
    pidfd = os.pidfd_open(pid)
    try:
        while True:
            if not channel.has_buffered_line():
                ready, _, _ = select.select([channel, pidfd], [], [])
                if pidfd in ready:
                    break
            message = channel.receive()
            if message is None or message.get("kill"):
                kill_group(pid)
                if message is None:
                    os._exit(0)
    finally:
        os.close(pidfd)
    _, status = os.waitpid(pid, 0)
    kill_group(pid)  # what the snippet left running in its session
    os.set_blocking(status_read, False)
    try:
        memory = MEMORY_MARK in os.read(status_read, 64)
    except BlockingIOError:
        memory = False
    os.close(status_read)
    result = {
        "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0,
        "memory": memory,
        "worker_died": False,
    }
    if request.get("fetch_files"):
        result["files"] = fetch_files(request["fetch_files"])  # before the clean-up empties the folder
    return result


def kill_group(pid):
    """Kills the snippet `pid` and its session (also before it has made the session its own)."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass


def serve_light(channel):
    """The lean zygote's loop: the same as the main loop, minus routing and clean-up (done by main)."""
    set_dumpable(False)
    gc.collect()
    gc.freeze()
    while True:
        message = channel.receive()
        if message is None:
            os._exit(0)
        if "code" in message:
            out_fd, err_fd = channel.take_fds(2)
            channel.send(run_snippet(channel, message, out_fd, err_fd))
        elif message.get("ping"):
            channel.send({"pong": True})


def start_light_zygote():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            os.close(CONTROL_FD)
            serve_light(Channel(theirs))
        finally:
            os._exit(1)
    theirs.close()
    return pid, Channel(ours)


def relay(control, light, request, out_fd, err_fd):
    """Has the lean zygote run the request, passing on kill requests; returns its result message, or
    None when it died."""
    light.send(request, fds=[out_fd, err_fd])
    os.close(out_fd)
    os.close(err_fd)
    while True:
        if light.has_buffered_line():
            return light.receive()
        if not control.has_buffered_line():
            ready, _, _ = select.select([control, light], [], [])
            if light in ready:
                return light.receive()
        message = control.receive()
        if message is None:
            os._exit(0)
        if message.get("kill"):
            try:
                light.send({"kill": True})
            except OSError:
                pass  # it has died: select will say so


def kill_everything_else(spare):
    """SIGKILLs every process in this sandbox but us (its init), `spare` and bubblewrap's pid 1, and
    waits until they are gone and reaped. Only with a PID namespace of our own, where that is exactly
    what snippets started. False when some are still there after a few seconds."""
    import time
    keep = {1, os.getpid(), *spare}
    deadline = time.monotonic() + 5
    while True:
        reap_children()
        others = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in keep]
        if not others:
            return True
        if time.monotonic() > deadline:
            return False
        pidfds = []
        for pid in others:
            try:
                os.kill(pid, signal.SIGKILL)
                pidfds.append(os.pidfd_open(pid))
            except OSError:
                pass  # already gone
        if pidfds:
            select.select(pidfds, [], [], 0.05)  # a pidfd is readable once its process has exited
        for fd in pidfds:
            os.close(fd)


def reap_children():
    """Reaps exited children: as init we also inherit every orphan of the sandbox."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def empty_folder(folder):
    """Removes everything in `folder`, whatever permissions the snippet left; True when it is empty."""
    import shutil
    try:
        os.chmod(folder, 0o700 if folder != "/dev/shm" else 0o1777)
        for root, dirs, _ in os.walk(folder):
            for name in dirs:
                path = os.path.join(root, name)
                if not os.path.islink(path):
                    os.chmod(path, 0o700)
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        return not os.listdir(folder)
    except OSError:
        return False


def clean_up_after_snippet(light_pid, light):
    """Ends what the snippet left behind; False when the worker can no longer be trusted (something
    could not be removed, or the lean zygote was stopped or killed) and must be replaced."""
    clean = True
    if SETTINGS["pid_namespace"]:
        clean = kill_everything_else(spare=[light_pid])
    clean = empty_folder(SETTINGS["workdir"]) and clean
    if SETTINGS["pid_namespace"] and os.path.isdir("/dev/shm"):
        clean = empty_folder("/dev/shm") and clean
    return clean and lean_zygote_answers(light)


def lean_zygote_answers(light):
    """Whether the lean zygote still serves. A snippet may have killed or stopped it; a signal it sent
    before it ended takes effect before the zygote runs any more of its own code, so a stopped or dead
    zygote never answers this ping (asking waitpid instead would race with the stop)."""
    try:
        light.send({"ping": True})
    except OSError:
        return False  # gone
    if not light.has_buffered_line():
        ready, _, _ = select.select([light], [], [], 2.0)
        if not ready:
            return False
    reply = light.receive()
    return reply is not None and reply.get("pong", False)


def serve():
    # As the sandbox's init (pid 1) only signals we handle reach us from inside: handle none.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control = Channel(socket.socket(fileno=CONTROL_FD))
    os.chdir(SETTINGS["workdir"])
    preload_light()
    light_pid, light = start_light_zygote()
    preload_heavy()
    set_dumpable(False)
    gc.collect()
    gc.freeze()  # keep the collector from touching (and so copying) the parent's pages in children
    control.send({"ready": True})
    while True:
        message = control.receive()
        if message is None:
            os._exit(0)  # torl has gone; skip the slow interpreter shutdown
        if "code" not in message:
            continue  # a kill for a snippet that has already ended
        out_fd, err_fd = control.take_fds(2)
        if uses_heavy_modules(message["code"]):
            result = run_snippet(control, message, out_fd, err_fd)
            if not lean_zygote_answers(light):
                result = None  # the snippet, run beside it, killed or stopped the lean zygote
        else:
            result = relay(control, light, message, out_fd, err_fd)  # None when the lean zygote died
        if result is None:
            # The snippet broke this worker: report it as its result, then exit so that torl replaces us.
            control.send({"exit_code": -1, "signal": 0, "memory": False, "worker_died": True})
            os._exit(0)
        control.send(result)
        if not clean_up_after_snippet(light_pid, light):
            # Something the snippet left cannot be removed (or stopped the lean zygote afterwards).
            control.send({"worker_died": True})
            os._exit(0)
        control.send({"ready": True})


if __name__ == "__main__":
    serve()
