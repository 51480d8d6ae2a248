"""Which isolation this machine gives a sandboxed run, and the argv that applies it.

Three levels, best first (``LLMLAB_SANDBOX_ISOLATION=bwrap|unshare|rlimits`` forces one, for tests and for
machines where a probe lies):

``bwrap``
    Debian's ``bubblewrap``: new network, pid, ipc and uts namespaces; the root file system read-only;
    a private ``/tmp`` (size-capped tmpfs); the parent's ``$HOME`` hidden behind an empty tmpfs (only the
    directories the run needs, e.g. a Python installed under it, are bound back read-only); the run's own
    directory the only writable place. When we are root, the program then drops to a fresh uid with no
    capabilities (``setpriv``), so the process limit applies (root is exempt from ``RLIMIT_NPROC``) and
    file permissions protect the rest of the machine.
``unshare``
    util-linux ``unshare``: new user, network and pid namespaces (no network, the whole tree dies with
    its first process), plus the uid drop and rlimits. The file system is NOT made read-only: only file
    permissions (the fresh uid owns nothing outside its directory) stop writes, and world-writable
    places such as ``/tmp`` stay writable.
``rlimits``
    Resource limits and (as root) the uid drop only: NO network isolation and no file-system isolation
    beyond permissions. ``llmlab doctor`` warns loudly.

Resource limits are applied in every mode by ``prlimit`` (util-linux) in front of the command: CPU
seconds, address space, file size, open files, processes.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

MODES = ("bwrap", "unshare", "rlimits")
TMP_SIZE = 256 << 20  # bytes of the private /tmp under bwrap


@dataclass(frozen=True)
class Isolation:
    """The isolation a sandboxed run gets on this machine.

    Attributes:
        mode: ``bwrap``, ``unshare`` or ``rlimits``.
        network: Whether the run is cut off from the network (own network namespace).
        filesystem: Whether the file system outside the run's directory is read-only / hidden.
        pid_namespace: Whether the run's processes all die with it (own pid namespace).
        drop_uid: Whether the run gets a fresh unprivileged uid (we are root).
        detail: One line for ``llmlab doctor``.
        warning: Non-empty when isolation is weak (what is NOT contained and how to fix it).
    """

    mode: str
    network: bool
    filesystem: bool
    pid_namespace: bool
    drop_uid: bool
    detail: str
    warning: str = ""


def _probe(argv: list[str]) -> bool:
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _make(mode: str, as_root: bool) -> Isolation:
    uid = "a fresh uid per run (no capabilities)" if as_root else "the caller's uid"
    if mode == "bwrap":
        return Isolation("bwrap", True, True, True, as_root,
                         f"bubblewrap: no network, own pid namespace, read-only root, private /tmp, "
                         f"parent HOME hidden, {uid}, rlimits")
    if mode == "unshare":
        return Isolation("unshare", True, False, True, as_root,
                         f"unshare: no network, own pid namespace, {uid}, rlimits",
                         warning="no file-system isolation: world-writable paths such as /tmp are writable "
                                 "by sandboxed code; install bubblewrap (apt-get install bubblewrap)")
    return Isolation("rlimits", False, False, False, as_root, f"rlimits only, {uid}",
                     warning="ONLY RLIMITS: sandboxed code can use the network and write world-writable "
                             "paths; install bubblewrap (apt-get install bubblewrap) or allow user "
                             "namespaces")


@functools.cache
def detect() -> Isolation:
    """The best isolation that works here (probed once per process).

    Returns:
        An :class:`Isolation`.
    """
    as_root = os.geteuid() == 0
    forced = os.environ.get("LLMLAB_SANDBOX_ISOLATION", "").strip()
    if forced:
        if forced not in MODES:
            from llmlab.core.errors import ConfigError

            raise ConfigError(f"LLMLAB_SANDBOX_ISOLATION={forced!r}: use one of {', '.join(MODES)}")
        return _make(forced, as_root)
    true = shutil.which("true") or "/bin/true"
    if shutil.which("bwrap") and _probe([*bwrap_prefix("/", as_root, uid=_PROBE_UID, hide=()), true]):
        return _make("bwrap", as_root)
    if shutil.which("unshare") and _probe([*unshare_prefix(as_root, uid=_PROBE_UID), true]):
        return _make("unshare", as_root)
    return _make("rlimits", as_root)


_PROBE_UID = 1_999_999


def drop_uid_argv(uid: int) -> list[str]:
    """``setpriv`` argv that becomes ``uid`` with no capabilities and no way to regain them."""
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--no-new-privs", "--"]


def hidden_home() -> tuple[str, ...]:
    """Directories to hide from sandboxed code: the parent's HOME (may hold tokens, ssh keys)."""
    home = os.path.expanduser("~")
    if home in ("/", "") or not os.path.isdir(home):
        return ()
    return (os.path.realpath(home),)


def needed_under(hidden: tuple[str, ...], extra: tuple[str, ...] = ()) -> list[str]:
    """Paths under a hidden directory that a run still needs (read-only): this Python, ``extra``."""
    wanted = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, *extra)}
    out = []
    for path in sorted(wanted):
        if any(path == h or path.startswith(h + os.sep) for h in hidden) and os.path.exists(path):
            out.append(path)
    return out


def bwrap_prefix(workdir: str, as_root: bool, *, uid: int, hide: tuple[str, ...] | None = None,
                 ro_paths: tuple[str, ...] = ()) -> list[str]:
    """The bubblewrap argv (up to and excluding the command) for a run in ``workdir``."""
    hidden = hidden_home() if hide is None else hide
    argv = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--perms", "1777", "--size", str(TMP_SIZE), "--tmpfs", "/tmp"]
    for h in hidden:
        argv += ["--tmpfs", h]
    made: set[str] = set()
    for p in needed_under(hidden, ro_paths):
        parents = []
        up = os.path.dirname(p)
        while up not in hidden and up not in ("/", "") and up not in made:
            parents.append(up)
            up = os.path.dirname(up)
        for d in reversed(parents):  # traversable parents in the tmpfs (bwrap would make them 0700)
            argv += ["--perms", "0755", "--dir", d]
            made.add(d)
        argv += ["--ro-bind", p, p]
    if workdir != "/":
        argv += ["--bind", workdir, workdir, "--chdir", workdir]
    argv += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
             "--die-with-parent", "--new-session"]
    if as_root:
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--"]
        argv += drop_uid_argv(uid)
    else:
        argv += ["--unshare-user", "--"]
    return argv


def unshare_prefix(as_root: bool, *, uid: int) -> list[str]:
    """The ``unshare`` argv (up to and excluding the command): no network, own pid namespace."""
    argv = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount", "--mount-proc"]
    if as_root:
        return [*argv, "--", *drop_uid_argv(uid)]
    return ["unshare", "--user", "--map-root-user", *argv[1:], "--"]
