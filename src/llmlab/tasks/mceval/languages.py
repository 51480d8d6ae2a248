"""Per-language harness of McEval: file name, build/run commands, pass rule, toolchain, Debian packages.

Commands follow the official ``eval/excute.py`` (commit 09dec12) unless a deviation is noted in
:mod:`llmlab.tasks.mceval`. Each language runs as ONE sandboxed shell script (compile, then run), so the
wall-clock limit covers compile + run, as the official ``time_limit`` does for most languages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from llmlab.sandbox.isolation_modes import hidden_home

VM_LANGS = {"Java", "Kotlin", "Scala", "Groovy", "Go", "JavaScript", "TypeScript", "CoffeeScript", "Haskell",
            "Common Lisp", "Erlang", "Elixir", "Racket", "Scheme", "Julia", "C#", "Dart", "R", "Emacs Lisp"}


@dataclass(frozen=True)
class Lang:
    """How one McEval language is built, run and judged.

    Attributes:
        name: The McEval language name (file name of its jsonl).
        fence: Markdown fence tags a model may use (first: the one we write for canonical answers).
        filename: The source file name (``{module}`` is replaced by the item's ``module``).
        script: Shell lines run in the sandbox (``{src}``: the source file, ``{stem}``: its stem,
            ``{module}``: the Erlang module, ``{python}``: this Python, ``{lua}``: the Lua interpreter).
        tools: Programs that must be on PATH (the first missing one is reported).
        packages: Debian packages that provide them (``llmlab mceval setup``).
        stdout_fail: Substrings of stdout that make a run fail (case-sensitive unless ``lower=True``).
        stderr_fail: Substrings of stderr that make a run fail.
        timeout: Wall-clock seconds for compile + run (official: 15 s; more where it allows more).
        kind: ``exec`` (run the program), ``json``/``html``/``markdown`` (compare to a reference file), ``awk``
            (compare the output with the canonical command's output).
        test_first: The program is ``test + prompt + solution`` (Fortran), not ``prompt + solution + test``.
        env: Extra environment variables for the run.
    """

    name: str
    fence: tuple[str, ...]
    filename: str
    script: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    stdout_fail: tuple[str, ...] = ()
    stderr_fail: tuple[str, ...] = ()
    lower_stdout: bool = False
    timeout: float = 15.0
    kind: str = "exec"
    test_first: bool = False
    env: dict[str, str] = field(default_factory=dict)

    def missing_tool(self) -> str | None:
        """The first required program not on the sandbox's PATH (``None``: all there)."""
        for tool in self.tools:
            if tool == "{lua}":
                if lua_interpreter() is None:
                    return "lua"
                continue
            if tool == "python3":
                continue  # this Python
            if sandbox_which(tool) is None:
                return tool
        return None

    @property
    def memory(self) -> int | None:
        """Address-space limit: none for runtimes that reserve huge virtual ranges (JVM, V8, Go, GHC...)."""
        return None if self.name in VM_LANGS else 4 << 30


def sandbox_which(tool: str) -> str | None:
    """``shutil.which`` as the sandbox sees PATH.

    Programs under the parent's hidden HOME do not count (a rustup ``rustc`` in ``~/.cargo/bin`` is
    invisible to sandboxed runs). A program found is remembered for this PATH (every item asks again, and
    the realpath walk over PATH cost ~0.6 ms per call on the event loop); a missing one is looked up again
    each time, so a toolchain installed while the process runs is seen.
    """
    key = (tool, os.environ.get("PATH", ""))
    found = _FOUND.get(key)
    if found is not None and os.access(found, os.X_OK):
        return found
    hidden = hidden_home()
    for d in key[1].split(os.pathsep):
        if not d or any(os.path.realpath(d) == h or os.path.realpath(d).startswith(h + os.sep) for h in hidden):
            continue
        found = shutil.which(tool, path=d)
        if found is not None:
            _FOUND[key] = found
            return found
    return None


_FOUND: dict[tuple[str, str], str] = {}


JVM_LANGS = ("Java", "Kotlin", "Scala", "Groovy")

# Debian's launchers use these JVM options when JAVA_OPTS is unset (kotlinc, scala: "-Xmx256M -Xms32M";
# groovy: none, i.e. the JVM's defaults). JAVA_OPTS replaces them, so ours start from them.
JVM_LAUNCHER_OPTS = {"Kotlin": "-Xmx256M -Xms32M", "Scala": "-Xmx256M -Xms32M", "Groovy": ""}
# JVM flags that change how fast the compiler and the program start, never what is compiled or run: the
# client JIT only (a short-lived compiler spends more time in C2 than it gains) and the serial collector
# (no parallel GC threads). Measured with bench/mceval_jvm.py: same verdict on every item (docs/mceval.md).
JVM_FAST_FLAGS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


# Groovy reads ``list.size`` (no parentheses) as ArrayList's private field ``size``; JDK 17's strong
# encapsulation (JEP 403) forbids that reflective access, so Groovy falls back to a GPath over the elements
# and the data's solutions fail. Opening java.util restores what JDK <= 15 allowed (docs/mceval.md).
GROOVY_OPENS = "--add-opens java.base/java.util=ALL-UNNAMED"


def jvm_opts(name: str) -> dict[str, str]:
    """``JAVA_OPTS`` of a Kotlin/Scala/Groovy run: launcher defaults, fast flags, Groovy's java.util opening."""
    extra = f" {GROOVY_OPENS}" if name == "Groovy" else ""
    return {"JAVA_OPTS": f"{JVM_LAUNCHER_OPTS[name]} {JVM_FAST_FLAGS}{extra}".strip()}


def java_home() -> str | None:
    """JAVA_HOME of the ``java`` on PATH.

    Groovy's and Scala's launchers need it; Debian's ``/usr/lib/jvm/default-java`` exists only with
    ``default-jre``.
    """
    java = sandbox_which("java")
    if java is None:
        return None
    real = os.path.realpath(java)
    return os.path.dirname(os.path.dirname(real)) if real.endswith("/bin/java") else None


def run_env(lang: Lang) -> dict[str, str]:
    """Environment of a language's sandboxed run (its own variables, JAVA_HOME for the JVM languages)."""
    env = dict(lang.env)
    if lang.name in JVM_LANGS:
        home = java_home()
        if home is not None:
            env["JAVA_HOME"] = home
    return env


def lua_interpreter() -> str | None:
    """``lua5.4`` when installed, else ``lua`` (the official harness calls ``lua``)."""
    for name in ("lua5.4", "lua5.3", "lua"):
        if sandbox_which(name):
            return name
    return None


def _simple(name: str, fence: tuple[str, ...], ext: str, cmd: str, tool: str, packages: tuple[str, ...],
            **kw: object) -> Lang:
    return Lang(name, fence, f"main.{ext}", (cmd.replace("{tool}", tool),), (tool,), packages, **kw)  # type: ignore[arg-type]


_GO_LOCK = threading.Lock()
GO_ENV = {"GO111MODULE": "off", "GOPATH": "/usr/share/gocode", "GOFLAGS": "-buildvcs=false", "CGO_ENABLED": "0"}

LANGS: dict[str, Lang] = {lang.name: lang for lang in (
    Lang("Python", ("python", "py", "Python"), "main.py", ("{python} main.py",), ("python3",), ()),
    Lang("C", ("c", "C"), "main.c", ("gcc -o main main.c -lm", "./main"), ("gcc",), ("gcc", "libc6-dev"),
         stdout_fail=("failed",)),
    Lang("CPP", ("cpp", "c++", "C++", "CPP"), "main.cpp", ("g++ -g -std=c++11 -o main main.cpp", "./main"),
         ("g++",), ("g++",), stdout_fail=("failed",)),
    Lang("Go", ("go", "Go", "golang"), "main_test.go",
         ('if [ -d "{gocache}" ]; then cp -r "{gocache}" "$HOME/gocache"; fi', 'export GOCACHE="$HOME/gocache"',
          "go test main_test.go"), ("go",),
         ("golang-go", "golang-github-stretchr-testify-dev"), timeout=35.0, env=GO_ENV,
         stderr_fail=()),
    Lang("Rust", ("rust", "Rust", "rs"), "main.rs",
         ("rustc --edition 2021 --test -A warnings -o main main.rs", "./main"), ("rustc",), ("rustc",),
         timeout=35.0),
    Lang("Java", ("java", "Java"), "Main.java", ("java -ea Main.java",), ("java",), ("default-jdk-headless",),
         timeout=20.0),
    Lang("JavaScript", ("javascript", "js", "JavaScript"), "main.js", ("node main.js",), ("node",), ("nodejs",),
         stderr_fail=("failed",)),
    Lang("TypeScript", ("typescript", "ts", "TypeScript"), "main.ts",
         ("tsc --lib es2015,dom main.ts > tsc.log 2>&1 || true", "node main.js"), ("tsc", "node"),
         ("node-typescript", "nodejs"), stderr_fail=("failed",), timeout=30.0),
    Lang("Ruby", ("ruby", "rb", "Ruby"), "main.rb", ("ruby main.rb",), ("ruby",), ("ruby",)),
    Lang("PHP", ("php", "PHP"), "main.php", ("php -d zend.assertions=1 -d assert.exception=1 main.php",), ("php",),
         ("php-cli",)),
    Lang("Perl", ("perl", "pl", "Perl"), "main.pl", ("perl main.pl",), ("perl",), ("perl",)),
    Lang("Lua", ("lua", "Lua"), "main.lua", ("{lua} main.lua",), ("{lua}",), ("lua5.4",), stderr_fail=("failed",)),
    Lang("R", ("r", "R"), "main.R", ("Rscript main.R",), ("Rscript",), ("r-base-core",)),
    Lang("Racket", ("racket", "Racket", "rkt"), "main.rkt", ("racket main.rkt",), ("racket",), ("racket",),
         stderr_fail=("FAILURE",), timeout=30.0),
    Lang("Scheme", ("scheme", "Scheme", "racket"), "main.scm", ("racket main.scm",), ("racket",), ("racket",),
         stderr_fail=("FAILURE",), timeout=30.0),
    Lang("Haskell", ("haskell", "hs", "Haskell"), "main.hs", ("ghc -o main main.hs > ghc.log", "./main"),
         ("ghc",), ("ghc",), stdout_fail=("fail",), lower_stdout=True, timeout=40.0),
    Lang("Elixir", ("elixir", "Elixir", "exs"), "main.exs", ("elixir main.exs",), ("elixir",), ("elixir",),
         timeout=30.0),
    Lang("Erlang", ("erlang", "Erlang", "erl"), "{module}.erl",
         ("erlc {module}.erl", "erl -noshell -s {module} test -s init stop"), ("erlc", "erl"), ("erlang-nox",),
         timeout=30.0),
    Lang("Fortran", ("fortran", "Fortran", "f90", "f95"), "main.f95", ("gfortran -o main main.f95", "./main"),
         ("gfortran",), ("gfortran",), stdout_fail=("failed",), test_first=True),
    Lang("Pascal", ("pascal", "Pascal", "pas", "delphi"), "main.pas", ("fpc -MObjfpc main.pas > fpc.log", "./main"),
         ("fpc",), ("fp-compiler",), stderr_fail=("failed",)),
    Lang("Common Lisp", ("lisp", "common-lisp", "commonlisp", "cl"), "main.lisp", ("sbcl --script main.lisp",),
         ("sbcl",), ("sbcl",)),
    Lang("Emacs Lisp", ("elisp", "emacs-lisp", "lisp"), "main.el", ("emacs --batch -l main.el",), ("emacs",),
         ("emacs-nox",)),
    Lang("Tcl", ("tcl", "Tcl"), "main.tcl", ("tclsh main.tcl",), ("tclsh",), ("tcl",)),
    Lang("Kotlin", ("kotlin", "kt", "kts", "Kotlin"), "main.kts", ("kotlinc -script main.kts",), ("kotlinc",),
         ("kotlin",), timeout=60.0, env=jvm_opts("Kotlin")),
    Lang("Scala", ("scala", "Scala"), "main.scala", ("scala -nc main.scala",), ("scala",), ("scala",), timeout=120.0,
         env=jvm_opts("Scala")),
    Lang("Groovy", ("groovy", "Groovy"), "main.groovy", ("groovy main.groovy",), ("groovy",), ("groovy",),
         timeout=40.0, env=jvm_opts("Groovy")),
    Lang("CoffeeScript", ("coffeescript", "coffee", "CoffeeScript"), "main.coffee", ("coffee main.coffee",),
         ("coffee",), ("coffeescript",)),
    Lang("Shell", ("bash", "sh", "shell", "Shell"), "main.sh", ("bash main.sh",), ("bash", "bc"), ("bash", "bc")),
    Lang("VimScript", ("vim", "vimscript", "viml"), "main.vim",
         ("vim -u NONE -i NONE -n -N -es --cmd 'source main.vim' < /dev/null",), ("vim",), ("vim-nox",),
         stderr_fail=("failed",), timeout=30.0),
    Lang("AWK", ("awk", "bash", "sh", "shell"), "main.sh", ("sh main.sh",), ("awk", "sort", "uniq"), ("gawk",),
         kind="awk"),
    Lang("Julia", ("julia", "jl"), "main.jl", ("julia main.jl",), ("julia",), ()),
    Lang("Swift", ("swift",), "main.swift", ("swift main.swift",), ("swift",), ()),
    Lang("Dart", ("dart",), "main.dart", ("dart run --enable-asserts main.dart",), ("dart",), ()),
    Lang("PowerShell", ("powershell", "ps1", "pwsh"), "main.ps1", ("pwsh main.ps1",), ("pwsh",), ()),
    Lang("C#", ("csharp", "cs", "c#"), "Program.cs", ("dotnet run",), ("dotnet",), ()),
    Lang("F#", ("fsharp", "fs", "f#"), "Program.fs", ("dotnet run",), ("dotnet",), ()),
    Lang("Visual Basic", ("vb", "vbnet", "visualbasic"), "Program.vb", ("dotnet run",), ("dotnet",), ()),
    Lang("JSON", ("json",), "answer.json", kind="json"),
    Lang("HTML", ("html",), "answer.html", kind="html", tools=()),
    Lang("Markdown", ("markdown", "md"), "answer.md", kind="markdown"),
)}


def render_script(lang: Lang, module: str | None) -> str:
    """The shell script run in the sandbox for ``lang``.

    Steps run under ``set -e``: the exit status is the first failing step's.
    """
    lua = lua_interpreter()
    subs = {"{python}": sys.executable, "{module}": module if module is not None else "main",
            "{lua}": lua if lua is not None else "lua"}
    if lang.name == "Go":
        warm = go_warm_cache()
        subs["{gocache}"] = str(warm) if warm is not None else "/nonexistent"
    lines = []
    for step in lang.script:
        for key, value in subs.items():
            step = step.replace(key, value)
        lines.append(step)
    return "set -e\n" + "\n".join(lines) + "\n"


_GO_WARM_TEST = """package main

import (
\t"testing"

\t"github.com/stretchr/testify/assert"
)

func TestWarm(t *testing.T) { assert.Equal(t, 1, 1) }
"""


def go_warm_cache() -> Path | None:
    """A Go build cache holding the standard library and testify, built once (``None`` if it cannot be).

    Each sandboxed Go run starts from a private COPY of it (never a shared writable cache, which one run
    could poison for the next): ``go test`` then links in ~4 s instead of compiling ``testing``, ``net``
    and testify for ~40 s. Only Debian's own packages are compiled here, outside the sandbox.
    """
    go = sandbox_which("go")
    if go is None:
        return None
    from llmlab.core.data import cache_dir

    version = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False).stdout.strip()
    root = cache_dir().parent / "mceval" / f"gocache-{version or 'go'}"
    if (root / "READY").exists():
        return root
    with _GO_LOCK:
        if (root / "READY").exists():
            return root
        work = Path(tempfile.mkdtemp(prefix="llmlab-gowarm-"))
        try:
            (work / "warm_test.go").write_text(_GO_WARM_TEST)
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, **GO_ENV, "GOCACHE": str(root)}
            done = subprocess.run([go, "test", "warm_test.go"], cwd=work, env=env, capture_output=True,
                                  timeout=600, check=False)
            if done.returncode != 0:
                return None
            for dirpath, dirnames, filenames in os.walk(root):
                for name in dirnames:
                    os.chmod(os.path.join(dirpath, name), 0o755)
                for name in filenames:
                    os.chmod(os.path.join(dirpath, name), 0o644)
            (root / "READY").write_text(version)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return root


def debian_packages(langs: list[str] | None = None) -> list[str]:
    """The Debian packages ``llmlab mceval setup`` installs (for ``langs``, default all)."""
    names = langs if langs is not None else list(LANGS)
    out: list[str] = []
    for name in names:
        for pkg in LANGS[name].packages:
            if pkg not in out:
                out.append(pkg)
    return out
