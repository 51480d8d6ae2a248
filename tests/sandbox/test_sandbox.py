"""The sandbox against the escape list of issue 12: each attempt is contained, and each test says how."""

from __future__ import annotations

import os
import socket
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator

import anyio
import pytest

from llmlab import sandbox
from llmlab.core.concurrency import run_sync
from llmlab.core.errors import ConfigError
from llmlab.sandbox import isolation_modes as iso_mod
from llmlab.sandbox import runner

PY = sys.executable
ISO = sandbox.isolation()
needs_bwrap = pytest.mark.skipif(ISO.mode != "bwrap", reason=f"bubblewrap isolation not active here ({ISO.mode})")
needs_netns = pytest.mark.skipif(not ISO.network, reason=f"no network namespace here ({ISO.mode})")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the per-run uid needs root")


def _run(files: dict[str, str], command: list[str], **kw: object) -> sandbox.RunResult:
    return run_sync(sandbox.run(files, command, **kw))  # type: ignore[arg-type]


def _py(code: str, **kw: object) -> sandbox.RunResult:
    return _run({"main.py": textwrap.dedent(code)}, [PY, "main.py"], **kw)


def _alive_with(marker: str) -> list[int]:
    """Pids of live (non-zombie) processes whose command line contains ``marker``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                cmd = fh.read()
            with open(f"/proc/{name}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmd and state != "Z":
            found.append(int(name))
    return found


@pytest.fixture
def forced_rlimits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run as if only rlimits were available (the weakest mode must still contain what it claims)."""
    weak = iso_mod._make("rlimits", os.geteuid() == 0)
    monkeypatch.setattr(runner, "detect", lambda: weak)
    yield


# --- the API -----------------------------------------------------------------------------------------

def test_runs_files_with_stdin_and_reports_exit_code() -> None:
    r = _py("import sys\nname = input()\nprint('hello', name)\nprint('warn', file=sys.stderr)\nsys.exit(3)\n",
            stdin="bob\n", timeout=20)
    assert (r.exit_code, r.stdout, r.stderr) == (3, "hello bob\n", "warn\n")
    assert not r.ok and not r.timed_out and r.killed_by is None and r.wall_s > 0
    assert r.isolation == ISO.mode


def test_files_in_subdirectories_and_kept_outputs() -> None:
    r = _run({"pkg/data.txt": "41", "run.sh": "#!/bin/sh\nexpr $(cat pkg/data.txt) + 1 > out.txt\n"},
             ["./run.sh"], keep=("out.txt", "missing.txt"))
    assert r.ok, r.stderr
    assert r.files == {"out.txt": b"42\n"}


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x", "a/../../x", ""])
def test_paths_outside_the_run_directory_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="relative path"):
        _run({bad: "x"}, ["true"])


def test_empty_command_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="empty"):
        _run({}, [])


def test_missing_program_is_a_failed_run_not_a_crash() -> None:
    r = _run({}, ["no-such-program-xyz"])
    assert r.exit_code not in (0, None) and not r.ok


def test_concurrency_limit_bounds_runs_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    inflight, peak = 0, 0
    lock = threading.Lock()
    gate = threading.Event()

    def fake(*args: object, **kw: object) -> sandbox.RunResult:
        nonlocal inflight, peak
        with lock:
            inflight += 1
            peak = max(peak, inflight)
        gate.wait(0.05)
        with lock:
            inflight -= 1
        return sandbox.RunResult(0, "", "", False, None, 0.0)

    monkeypatch.setattr(runner, "run_blocking", fake)
    old = sandbox.concurrency()
    sandbox.set_concurrency(2)
    try:
        async def main() -> None:
            async with anyio.create_task_group() as tg:
                for _ in range(6):
                    tg.start_soon(sandbox.run, {}, ["true"])

        run_sync(main())
    finally:
        sandbox.set_concurrency(old)
    assert peak == 2
    with pytest.raises(ConfigError):
        sandbox.set_concurrency(0)


# --- the escape list ---------------------------------------------------------------------------------

@needs_root
def test_fork_bomb_hits_the_process_limit() -> None:
    # Contained by RLIMIT_NPROC on the run's own uid: fork() fails with EAGAIN well before the limit's
    # worth of processes exist, and every child dies with the run.
    marker = uuid.uuid4().hex
    r = _py(f"""
        import os, sys, time
        n = 0
        try:
            while True:
                if os.fork() == 0:
                    time.sleep(60)  # {marker}
                    os._exit(0)
                n += 1
        except OSError as exc:
            print(n, exc.errno, flush=True)
            sys.exit(7)
        """, timeout=30, limits=sandbox.Limits(processes=40))
    assert r.exit_code == 7, r.stderr
    n, errno_ = map(int, r.stdout.split())
    assert errno_ == 11 and n < 40  # EAGAIN
    assert _alive_with(marker) == []


@needs_root
def test_exponential_fork_bomb_is_contained_and_cleaned_up() -> None:
    marker = uuid.uuid4().hex
    r = _run({f"bomb_{marker}.sh": "b() { b | b & }; b\nsleep 30\n"}, ["sh", f"bomb_{marker}.sh"], timeout=3,
             limits=sandbox.Limits(processes=64))
    # Contained by RLIMIT_NPROC (fork fails) and the wall clock that kills the whole tree.
    assert r.timed_out and r.killed_by == "timeout"
    assert r.wall_s < 10
    assert _alive_with(marker) == []


def test_ten_gigabyte_allocation_fails_inside() -> None:
    # Contained by RLIMIT_AS (2 GiB default): the allocation itself fails in the program.
    r = _py("buf = bytearray(10 << 30)\nprint('allocated', len(buf))\n", timeout=20)
    assert r.exit_code == 1 and "MemoryError" in r.stderr and "allocated" not in r.stdout


def test_infinite_loop_is_killed_by_the_wall_clock() -> None:
    r = _py("while True:\n    pass\n", timeout=1.5)
    assert r.timed_out and r.killed_by == "timeout" and r.exit_code == 128 + 9
    assert r.wall_s < 6


def test_cpu_time_limit_stops_a_busy_loop() -> None:
    r = _py("while True:\n    pass\n", timeout=30, limits=sandbox.Limits(cpu_s=1))
    # RLIMIT_CPU: SIGXCPU after 1 CPU second, long before the 30 s wall clock.
    assert not r.timed_out and r.exit_code != 0
    if ISO.mode != "unshare":  # util-linux unshare reports a signalled child as a plain exit 1
        assert r.killed_by == "cpu_limit" and r.exit_code == 128 + 24


def test_sleep_past_timeout_with_children_kills_the_whole_tree() -> None:
    marker = "98765" + str(uuid.uuid4().int % 1000)
    r = _run({"s.sh": f"sleep {marker} &\nsleep {marker} &\n( sleep {marker} ) &\nsleep {marker}\n"},
             ["sh", "s.sh"], timeout=1)
    assert r.timed_out and r.killed_by == "timeout"
    assert _alive_with(f"sleep\x00{marker}") == []


def test_writes_outside_the_run_directory_do_not_land() -> None:
    tag = uuid.uuid4().hex
    home = os.path.realpath(os.path.expanduser("~"))
    targets = [os.path.join(home, f"escape-{tag}"), f"/tmp/escape-{tag}", f"/var/tmp/escape-{tag}",
               os.path.join(os.path.dirname(__file__), f"escape-{tag}")]
    # Without bubblewrap, world-writable /tmp and /var/tmp are NOT contained (doctor warns); only the
    # parent's HOME and this source tree are (file permissions against the run's own uid).
    contained = targets if ISO.filesystem else [targets[0], targets[3]]
    r = _py(f"""
        import json
        out = {{}}
        for path in {targets!r}:
            try:
                with open(path, "w") as fh:
                    fh.write("x")
                out[path] = "written"
            except OSError as exc:
                out[path] = exc.strerror
        print(json.dumps(out))
        """, timeout=20)
    assert r.ok, r.stderr
    seen = __import__("json").loads(r.stdout)
    for path in targets[1:3]:
        if path not in contained and os.path.exists(path):
            os.remove(path)
    for path in contained:
        assert not os.path.exists(path), f"{path} escaped the sandbox ({seen[path]})"
    if ISO.mode == "bwrap":
        # Contained by the read-only root bind, the tmpfs hiding HOME, and a private /tmp (writes land in
        # the sandbox's own tmpfs, which vanishes with it).
        assert seen[targets[0]] in ("Read-only file system", "Permission denied")
        assert seen[targets[1]] == "written"
        assert seen[targets[2]] == "Read-only file system"
        assert seen[targets[3]] == "Read-only file system"


def test_parent_environment_secrets_are_not_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-" + uuid.uuid4().hex
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("HF_TOKEN", secret)
    r = _py(f"""
        import os
        print(sorted(os.environ))
        print(os.environ.get("OPENAI_API_KEY"))
        for pid in (1, {os.getpid()}, os.getppid()):
            try:
                print(pid, "{secret}" in open(f"/proc/{{pid}}/environ", "rb").read().decode("latin-1"))
            except OSError as exc:
                print(pid, type(exc).__name__)
        """, timeout=20)
    assert r.ok, r.stderr
    # Contained by the scrubbed environment: only PATH, HOME, TMPDIR, locale, USER/LOGNAME, TERM.
    assert secret not in r.stdout
    assert "OPENAI_API_KEY" not in r.stdout.splitlines()[0]
    assert r.stdout.splitlines()[1] == "None"
    # ...and no process of the parent can be read (own pid namespace / another uid).
    for line in r.stdout.splitlines()[2:]:
        assert not line.endswith("True"), line


@needs_netns
def test_tcp_to_a_server_of_the_test_on_localhost_is_refused() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        # the server really is reachable from outside the sandbox
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        r = _py(f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=3)
                print("connected")
            except OSError as exc:
                print(exc.errno)
            """, timeout=20)
    finally:
        stop.set()
        thread.join(2)
        server.close()
    # Contained by the network namespace: its loopback is a different one (bwrap brings it up: nobody
    # listens there, ECONNREFUSED; unshare leaves it down: ENETUNREACH).
    assert r.ok, r.stderr
    assert int(r.stdout) in (111, 101)
    assert len(accepted) == 1  # only the test's own check


def test_one_gigabyte_stdout_flood_is_cut_off() -> None:
    r = _py("import sys\nchunk = b'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.buffer.write(chunk)\n",
            timeout=30)
    # Contained by the output cap: 1 MiB kept, the run killed as soon as it went past it.
    assert r.killed_by == "output_limit" and r.stdout_truncated and not r.timed_out
    assert len(r.stdout) == sandbox.Limits().output


def test_zombie_and_daemon_children_do_not_outlive_the_run() -> None:
    marker = uuid.uuid4().hex
    r = _py(f"""
        import os, sys, time
        if os.fork() == 0:          # a child that exits and is never waited for: a zombie
            os._exit(0)
        if os.fork() == 0:          # a daemon: new session, keeps stdout open, sleeps on
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "3600", "{marker}"])
            os._exit(0)
        time.sleep(0.2)
        print("parent done")
        """, timeout=20)
    assert r.ok and r.stdout == "parent done\n", r.stderr
    assert not r.timed_out and r.wall_s < 10  # the daemon holding stdout did not keep the run open
    # Contained by the pid namespace (bwrap/unshare: its processes die with its first one) or, with rlimits
    # only, by killing every process of the run's uid.
    assert _alive_with(marker) == []


# --- the weakest mode still contains what it claims ----------------------------------------------------

@needs_root
def test_rlimits_mode_still_kills_daemons_and_sleepers(forced_rlimits: None) -> None:
    marker = "98764" + str(uuid.uuid4().int % 1000)
    r = _run({"s.sh": f"setsid sleep {marker} &\nsleep {marker}\n"}, ["sh", "s.sh"], timeout=1)
    assert r.isolation == "rlimits" and r.timed_out
    assert _alive_with(f"sleep\x00{marker}") == []  # killed by uid, though it left the process group


@needs_root
def test_rlimits_mode_fork_bomb_limit(forced_rlimits: None) -> None:
    r = _py("""
        import os, sys, time
        n = 0
        try:
            while True:
                if os.fork() == 0:
                    time.sleep(60)
                    os._exit(0)
                n += 1
        except OSError as exc:
            print(n, exc.errno)
            sys.exit(7)
        """, timeout=30, limits=sandbox.Limits(processes=30))
    assert r.exit_code == 7 and r.stdout.split()[1] == "11"


def test_isolation_is_reported_with_a_loud_warning_when_weak() -> None:
    weak = iso_mod._make("rlimits", True)
    assert not weak.network and "ONLY RLIMITS" in weak.warning
    assert iso_mod._make("bwrap", True).warning == ""
    assert iso_mod._make("unshare", False).warning.startswith("no file-system isolation")


def test_forced_isolation_must_be_a_known_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMLAB_SANDBOX_ISOLATION", "docker")
    iso_mod.detect.cache_clear()
    try:
        with pytest.raises(ConfigError, match="bwrap, unshare, rlimits"):
            iso_mod.detect()
    finally:
        monkeypatch.delenv("LLMLAB_SANDBOX_ISOLATION")
        iso_mod.detect.cache_clear()


@needs_bwrap
def test_bwrap_hides_home_but_shows_this_python() -> None:
    home = os.path.realpath(os.path.expanduser("~"))
    r = _py(f"import os\nprint(sorted(os.listdir({home!r})))\n", timeout=20)
    assert r.ok, r.stderr
    visible = eval(r.stdout)
    real = os.listdir(home)
    assert len(visible) <= 1 and set(visible) <= set(real)


def test_sandbox_process_serves_requests_and_dies_on_close() -> None:
    doubler = "import sys\nfor line in sys.stdin:\n    print(int(line) * 2, flush=True)\n"
    proc = sandbox.SandboxProcess([PY, "-c", doubler])
    try:
        assert proc.proc.stdin is not None and proc.proc.stdout is not None
        proc.proc.stdin.write("21\n")
        proc.proc.stdin.flush()
        assert proc.proc.stdout.readline() == "42\n"
    finally:
        proc.close()
    assert proc.proc.poll() is not None and not os.path.exists(proc.workdir)


def test_doctor_says_which_isolation_is_active(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmlab.backends.doctor import render, sandbox_checks

    (check,) = sandbox_checks()
    assert check.ok == (ISO.warning == "") and ISO.detail in check.detail
    monkeypatch.setenv("LLMLAB_SANDBOX_ISOLATION", "rlimits")
    iso_mod.detect.cache_clear()
    try:
        (weak,) = sandbox_checks()
    finally:
        monkeypatch.delenv("LLMLAB_SANDBOX_ISOLATION")
        iso_mod.detect.cache_clear()
    assert weak.status == "warn" and "WARNING" in weak.detail and "ONLY RLIMITS" in weak.fix
    assert "fix: ONLY RLIMITS" in render("mock:echo", [weak])
