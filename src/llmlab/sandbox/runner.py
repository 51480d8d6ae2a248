"""One sandboxed run: a fresh directory, a scrubbed environment, limits, a wall clock, capped output.

The blocking part runs in a worker thread (``anyio.to_thread``) under a capacity limiter, so many runs
can be awaited at once while at most ``concurrency()`` processes trees run.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import IO

import anyio
import anyio.to_thread

from llmlab.core.errors import ConfigError
from llmlab.sandbox.isolation_modes import Isolation, bwrap_prefix, detect, drop_uid_argv, unshare_prefix

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
GRACE_S = 0.2  # after the main process exits, how long leftover children may keep its pipes open


@dataclass(frozen=True)
class Limits:
    """Resource limits of one run (``None``: not limited).

    Attributes:
        cpu_s: CPU seconds per process (``RLIMIT_CPU``); default: the wall timeout rounded up, plus 1.
        memory: Address space per process in bytes (``RLIMIT_AS``). Runtimes that reserve huge virtual
            ranges (JVM, V8, Go, GHC) need ``None`` or a large value.
        file_size: Largest file a process may write, bytes (``RLIMIT_FSIZE``).
        open_files: Open file descriptors per process (``RLIMIT_NOFILE``).
        processes: Processes and threads of the run's uid (``RLIMIT_NPROC``; applies because the run has
            its own uid when we are root).
        output: Bytes kept of stdout and of stderr each; a run writing more is killed
            (``killed_by="output_limit"``).
    """

    cpu_s: float | None = None
    memory: int | None = 2 << 30
    file_size: int | None = 256 << 20
    open_files: int | None = 1024
    processes: int | None = 256
    output: int = 1 << 20


@dataclass(frozen=True)
class RunResult:
    """What a sandboxed run did.

    Attributes:
        exit_code: The exit status; ``128 + N`` when killed by signal ``N`` (shell convention, in every
            isolation mode); ``None`` only if the process could not be started.
        stdout: Captured stdout (UTF-8, undecodable bytes replaced), at most ``Limits.output`` bytes.
        stderr: Captured stderr, same cap.
        timed_out: The wall-clock timeout fired and the whole process tree was killed.
        killed_by: Why the run was stopped, or ``None`` when it ended by itself: ``timeout``,
            ``output_limit``, ``cpu_limit`` (SIGXCPU), ``file_size_limit`` (SIGXFSZ), or
            ``signal:<NAME>`` for any other fatal signal.
        wall_s: Wall-clock seconds from start to the end of the process tree.
        isolation: The isolation mode it ran under.
        stdout_truncated: More stdout was written than kept.
        stderr_truncated: More stderr was written than kept.
        files: Files the run left in its directory that the caller asked to keep (``keep=``).
    """

    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    killed_by: str | None
    wall_s: float
    isolation: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Exit code 0, not timed out, not killed."""
        return self.exit_code == 0 and not self.timed_out and self.killed_by is None


_limiter: anyio.CapacityLimiter | None = None
_limit = max(1, os.cpu_count() or 1)
_uids_lock = threading.Lock()
_uids_in_use: set[int] = set()


def concurrency() -> int:
    """How many sandboxed runs execute at once (default: the number of CPU cores)."""
    return _limit


def set_concurrency(n: int) -> None:
    """Set how many sandboxed runs execute at once (takes effect for runs not yet waiting)."""
    global _limiter, _limit
    if n < 1:
        raise ConfigError(f"sandbox concurrency must be >= 1, got {n}")
    _limit = n
    if _limiter is not None:
        _limiter.total_tokens = n


def _get_limiter() -> anyio.CapacityLimiter:
    global _limiter
    if _limiter is None:
        _limiter = anyio.CapacityLimiter(_limit)
    return _limiter


def _new_uid() -> int:
    """A uid no process of this machine is likely to have (random, in a range no distro allocates)."""
    rng = random.SystemRandom()
    with _uids_lock:
        while True:
            uid = rng.randrange(1_000_000_000, 2_000_000_000)
            if uid not in _uids_in_use:
                _uids_in_use.add(uid)
                return uid


def _release_uid(uid: int | None) -> None:
    if uid is not None:
        with _uids_lock:
            _uids_in_use.discard(uid)


def _tasks_of_uid(uid: int) -> tuple[list[int], int]:
    """(pids, total threads) of the processes whose real uid is ``uid``."""
    pids, threads = [], 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as fh:
                status = fh.read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)]:
            pids.append(int(name))
            threads += int(fields.get("Threads", "1").strip() or 1)
    return pids, threads


def _kill_uid(uid: int) -> None:
    """SIGKILL every process of the run's own uid (children that left the process group)."""
    for _ in range(3):
        pids, _n = _tasks_of_uid(uid)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def _prlimit_argv(limits: Limits, timeout: float | None, as_root: bool) -> list[str]:
    if shutil.which("prlimit") is None:
        from llmlab.core.errors import MissingExtraError

        raise MissingExtraError("prlimit", "", "the sandbox (util-linux's prlimit; apt-get install util-linux)")
    argv = ["prlimit"]
    cpu = limits.cpu_s if limits.cpu_s is not None else (math.ceil(timeout) + 1 if timeout is not None else None)
    if cpu is not None:
        soft = max(1, math.ceil(cpu))
        argv.append(f"--cpu={soft}:{soft + 1}")
    if limits.memory is not None:
        argv.append(f"--as={int(limits.memory)}")
    if limits.file_size is not None:
        argv.append(f"--fsize={int(limits.file_size)}")
    if limits.open_files is not None:
        argv.append(f"--nofile={int(limits.open_files)}")
    if limits.processes is not None:
        n = int(limits.processes)
        if not as_root:  # the caller's uid: its own processes count against the limit too
            n += _tasks_of_uid(os.getuid())[1]
        argv.append(f"--nproc={n}")
    return [*argv, "--"]


def scrubbed_env(workdir: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a run: PATH, HOME/TMPDIR in its directory, a UTF-8 locale, and ``extra`` only.

    Nothing of the parent's environment (API keys, tokens) is passed unless named in ``extra``.
    """
    env = {
        "PATH": os.environ.get("PATH", DEFAULT_PATH),
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "USER": "sandbox",
        "LOGNAME": "sandbox",
        "TERM": "dumb",
    }
    if extra:
        env.update(extra)
    return env


def _safe_relpath(rel: str) -> str:
    norm = os.path.normpath(rel)
    if os.path.isabs(rel) or norm.startswith("..") or norm in (".", ""):
        raise ConfigError(f"sandbox file {rel!r}: use a relative path inside the run's directory")
    return norm


def write_files(workdir: str, files: Mapping[str, str | bytes]) -> None:
    """Write ``files`` (relative path -> contents) into ``workdir``; scripts with ``#!`` are executable."""
    for rel, content in files.items():
        path = os.path.join(workdir, _safe_relpath(rel))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        with open(path, "wb") as fh:
            fh.write(data)
        os.chmod(path, 0o755 if data.startswith(b"#!") else 0o644)


def _chown_tree(root: str, uid: int) -> None:
    os.chown(root, uid, uid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)


def command_argv(command: list[str], workdir: str, iso: Isolation, limits: Limits, timeout: float | None,
                 uid: int | None, ro_paths: tuple[str, ...] = ()) -> list[str]:
    """The full argv: ``prlimit`` + the isolation prefix + ``command``."""
    as_root = uid is not None
    argv = _prlimit_argv(limits, timeout, as_root)
    if iso.mode == "bwrap":
        argv += bwrap_prefix(workdir, as_root, uid=uid if uid is not None else 0, ro_paths=ro_paths)
    elif iso.mode == "unshare":
        argv += unshare_prefix(as_root, uid=uid if uid is not None else 0)
    elif as_root:
        argv += drop_uid_argv(uid if uid is not None else 0)
    return argv + list(command)


def _killed_by(code: int) -> str | None:
    if code <= 128 or code > 128 + 64:
        return None
    try:
        sig = signal.Signals(code - 128)
    except ValueError:
        return None
    if sig == signal.SIGXCPU:
        return "cpu_limit"
    if sig == signal.SIGXFSZ:
        return "file_size_limit"
    return f"signal:{sig.name}"


def _kill_tree(proc: subprocess.Popen[bytes], uid: int | None) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if uid is not None:
        _kill_uid(uid)


def _pump(proc: subprocess.Popen[bytes], deadline: float | None, cap: int,
          uid: int | None) -> tuple[bytes, bytes, bool, bool, str | None]:
    """Read stdout/stderr until both close (or the deadline / cap); returns (out, err, trunc_o, trunc_e, why)."""
    assert proc.stdout is not None and proc.stderr is not None
    sel = selectors.DefaultSelector()
    bufs: dict[int, bytearray] = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    trunc = {fd: False for fd in bufs}
    for stream in (proc.stdout, proc.stderr):
        os.set_blocking(stream.fileno(), False)
        sel.register(stream, selectors.EVENT_READ)
    why: str | None = None
    exited_at: float | None = None
    try:
        while sel.get_map():
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > GRACE_S:
                _kill_tree(proc, uid)  # children of an exited run still hold the pipes: end them
                break
            if deadline is not None and now >= deadline:
                why = "timeout"
                _kill_tree(proc, uid)
                break
            wait = 0.05 if deadline is None else max(0.0, min(0.05, deadline - now))
            for key, _ in sel.select(wait):
                fd = key.fd
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = bufs[fd]
                room = cap - len(buf)
                if len(chunk) > room:
                    buf += chunk[: max(room, 0)]
                    trunc[fd] = True
                    why = "output_limit"
                    _kill_tree(proc, uid)
                    break
                buf += chunk
            if why == "output_limit":
                break
    finally:
        sel.close()
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    return bytes(bufs[out_fd]), bytes(bufs[err_fd]), trunc[out_fd], trunc[err_fd], why


def run_blocking(files: Mapping[str, str | bytes], command: list[str], *, timeout: float | None = 15.0,
                 memory: int | str | None = "default", stdin: str | bytes | None = None,
                 env: Mapping[str, str] | None = None, limits: Limits | None = None,
                 ro_paths: tuple[str, ...] = (), keep: tuple[str, ...] = ()) -> RunResult:
    """The synchronous body of :func:`llmlab.sandbox.run` (same arguments)."""
    if not command:
        raise ConfigError("sandbox command is empty: give an argv list such as ['python3', 'main.py']")
    lim = limits if limits is not None else Limits()
    if memory != "default":
        lim = replace(lim, memory=None if memory is None else int(memory))
    iso = detect()
    uid = _new_uid() if os.geteuid() == 0 else None
    base = os.environ.get("LLMLAB_SANDBOX_DIR")
    workdir = os.path.realpath(tempfile.mkdtemp(prefix="llmlab-sb-", dir=base))
    try:
        write_files(workdir, files)
        if stdin is not None:
            with open(os.path.join(workdir, ".stdin"), "wb") as fh:
                fh.write(stdin.encode() if isinstance(stdin, str) else stdin)
        if uid is not None:
            _chown_tree(workdir, uid)
            os.chmod(workdir, 0o711)  # bwrap (root, no DAC override) must chdir in
        argv = command_argv(list(command), workdir, iso, lim, timeout, uid, ro_paths)
        stdin_f: IO[bytes] | int = subprocess.DEVNULL
        if stdin is not None:
            stdin_f = open(os.path.join(workdir, ".stdin"), "rb")  # noqa: SIM115 - closed right after Popen
        t0 = time.monotonic()
        try:
            proc = subprocess.Popen(argv, cwd=workdir, env=scrubbed_env(workdir, env), stdin=stdin_f,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                    close_fds=True)
        except OSError as exc:
            return RunResult(None, "", f"could not start {command[0]!r}: {exc}", False, None,
                             time.monotonic() - t0, iso.mode)
        finally:
            if not isinstance(stdin_f, int):
                stdin_f.close()
        deadline = t0 + timeout if timeout is not None else None
        try:
            out, err, t_out, t_err, why = _pump(proc, deadline, lim.output, uid)
            code = proc.wait()
        finally:
            if proc.poll() is None:
                _kill_tree(proc, uid)
                proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        if uid is not None and (why is not None or iso.mode == "rlimits"):
            _kill_uid(uid)  # without a pid namespace, nothing else guarantees the tree is gone
        wall = time.monotonic() - t0
        exit_code = 128 - code if code < 0 else code
        killed = why if why is not None else _killed_by(exit_code)
        kept: dict[str, bytes] = {}
        for rel in keep:
            path = os.path.join(workdir, _safe_relpath(rel))
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as fh:
                    kept[rel] = fh.read(lim.output)
        return RunResult(exit_code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                         why == "timeout", killed, wall, iso.mode, t_out, t_err, kept)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        _release_uid(uid)


async def run(files: Mapping[str, str | bytes], command: list[str], *, timeout: float | None = 15.0,
              memory: int | str | None = "default", stdin: str | bytes | None = None,
              env: Mapping[str, str] | None = None, limits: Limits | None = None,
              ro_paths: tuple[str, ...] = (), keep: tuple[str, ...] = ()) -> RunResult:
    r"""Run untrusted ``command`` on ``files`` in a fresh sandbox (see :mod:`llmlab.sandbox`).

    At most :func:`concurrency` runs execute at once; the others wait their turn.

    Args:
        files: Relative path -> contents (``str`` or ``bytes``) written into the run's fresh directory,
            which is also its cwd, HOME and TMPDIR.
        command: The argv (no shell), e.g. ``["python3", "main.py"]``; resolved on the sandbox's PATH.
        timeout: Wall-clock seconds; then the whole process tree is killed (``timed_out=True``).
        memory: Address-space limit in bytes per process (``None``: unlimited); default ``Limits().memory``.
        stdin: Fed to the program's stdin (default: ``/dev/null``).
        env: Extra environment variables (the parent's environment is NOT inherited).
        limits: The other resource limits.
        ro_paths: Paths under the parent's hidden HOME to show read-only (e.g. a toolchain installed there).
        keep: Relative paths of output files to return in ``RunResult.files``.

    Returns:
        A :class:`RunResult`.

    Raises:
        ConfigError: For an empty command or a file path outside the run's directory.

    Example:
        >>> from llmlab.core.concurrency import run_sync
        >>> r = run_sync(run({"a.sh": "echo hi"}, ["sh", "a.sh"]))
        >>> (r.exit_code, r.stdout)
        (0, 'hi\n')
    """
    async with _get_limiter():
        return await anyio.to_thread.run_sync(
            lambda: run_blocking(files, command, timeout=timeout, memory=memory, stdin=stdin, env=env,
                                 limits=limits, ro_paths=ro_paths, keep=keep))


class SandboxProcess:
    """A long-lived sandboxed process (pipes on stdin/stdout) for workers that serve many requests.

    Same isolation, environment scrubbing and limits as :func:`run`, without the wall clock (the caller
    times its requests and calls :meth:`close`, which kills the whole tree and removes the directory).

    Args:
        command: The argv.
        files: Files for its directory.
        env: Extra environment variables.
        limits: Resource limits (``cpu_s`` applies to the whole life of each process).
        stderr: Where its stderr goes (default: discarded).
    """

    def __init__(self, command: list[str], *, files: Mapping[str, str | bytes] | None = None,
                 env: Mapping[str, str] | None = None, limits: Limits | None = None,
                 stderr: int | None = subprocess.DEVNULL) -> None:
        lim = limits if limits is not None else Limits(cpu_s=None)
        self.isolation = detect()
        self._uid = _new_uid() if os.geteuid() == 0 else None
        base = os.environ.get("LLMLAB_SANDBOX_DIR")
        self.workdir = os.path.realpath(tempfile.mkdtemp(prefix="llmlab-sb-", dir=base))
        write_files(self.workdir, files if files is not None else {})
        if self._uid is not None:
            _chown_tree(self.workdir, self._uid)
            os.chmod(self.workdir, 0o711)
        argv = command_argv(list(command), self.workdir, self.isolation, lim, None, self._uid)
        self.proc: subprocess.Popen[str] = subprocess.Popen(
            argv, cwd=self.workdir, env=scrubbed_env(self.workdir, env), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True)

    def close(self) -> None:
        """Kill the process tree and remove its directory (idempotent)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self._uid is not None:
            _kill_uid(self._uid)
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
        _release_uid(self._uid)
        self._uid = None


def python_env() -> dict[str, str]:
    """Environment entries that let a sandboxed ``sys.executable`` import this llmlab (PYTHONPATH)."""
    import llmlab

    src = os.path.dirname(os.path.dirname(os.path.abspath(llmlab.__file__)))
    return {"PYTHONPATH": src, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
            "PYTHONHASHSEED": "0", "LLMLAB_SANDBOXED": "1"}
