"""Starting shoald from Python, and the ``shoald`` / ``python -m shoal.daemon`` entry.

``shoal.Daemon(domain, pools={64: 1024, "1M": 8}, limits={"servers": 1024})`` writes
a config file (format of docs/internal-spec.md), starts the real shoald with
``--ready-fd``, waits for "ready", and stops it with SIGTERM when closed.

The shoald of a ``shoal.Daemon`` dies with the process that started it, also when that
process is killed (SIGKILL): it is started with PR_SET_PDEATHSIG (SIGTERM). Linux sends
that signal when the *thread* that forked the child ends, so every shoald is forked by
one helper thread of this module that lives as long as the process, whichever thread
creates the Daemon.

``python -m shoal.daemon ARGS`` and the ``shoald`` console script (shoal.daemon:main) run the shoald
binary bundled in the package with ARGS (``--help`` lists them).
"""

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from .errors import DaemonError

__all__ = ["Daemon", "find_shoald", "main"]

_HERE = os.path.dirname(os.path.abspath(__file__))
_EXIT_MEANING = {
    1: "bad usage or bad config",
    2: "a daemon is already alive on this domain",
    3: "start-up failure",
}
_SIZE_RE = re.compile(r"^[0-9]+[KMG]?$")
_DOMAIN_RE = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")


def _is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _find_binary(name, env_var, use_path):
    """(path, candidates): the first executable ELF file among $env_var, the copy bundled
    in the package (shoal/_bin/NAME), the CMake build tree of a source checkout
    (build/NAME) and, with use_path, NAME on $PATH (a console script there is skipped);
    path is None when there is none."""
    candidates = []
    if os.environ.get(env_var):
        candidates.append(os.environ[env_var])
    candidates.append(os.path.join(_HERE, "_bin", name))
    candidates.append(os.path.join(_HERE, os.pardir, os.pardir, "build", name))
    if use_path:
        found = shutil.which(name)
        if found:
            candidates.append(found)
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK) and _is_elf(c):
            return os.path.abspath(c), candidates
    return None, candidates


def find_shoald(use_path=True):
    """Path of the shoald binary.

    Looked up in order: $SHOALD; the copy bundled in the package (shoal/_bin/shoald,
    built by ``pip install .`` or ``setup.py build_ext --inplace``); the CMake build tree
    of a source checkout (build/shoald); a ``shoald`` binary (not a script) on $PATH.
    """
    path, candidates = _find_binary("shoald", "SHOALD", use_path)
    if path is None:
        raise DaemonError("shoald binary not found (looked at: %s); reinstall shoal with "
                          "`pip install .`, or set $SHOALD to its path" % ", ".join(candidates))
    return path


def _count(value, what, minimum):
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise TypeError("%s must be an int, not %s %s" % (what, type(value).__name__,
                                                          _shown(value)))
    value = value.__index__()
    if value < minimum or value > (1 << 63) - 1:
        raise ValueError("%s must be >= %d, not %s" % (what, minimum, _shown(value)))
    return value


def _shown(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _size_key(size):
    if isinstance(size, bool):
        raise ValueError("pool size %r: use an int or a string like '1M'" % (size,))
    if isinstance(size, int):
        if size <= 0:
            raise ValueError("pool chunk size must be > 0 (got %d)" % size)
        return str(size)
    text = str(size).strip().upper()
    if text.endswith("B") and len(text) > 1 and text[-2] in "KMG":
        text = text[:-1]
    if not _SIZE_RE.match(text):
        raise ValueError("pool chunk size %s: use bytes (64) or K/M/G suffixes ('64K', '1M')"
                         % _shown(size))
    return text


def config_text(pools=None, limits=None):
    """The config file for the given pools ({size: count}) and limits ({key: value})."""
    lines = ["# written by shoal.Daemon"]
    if limits:
        lines.append("[limits]")
        for key, value in limits.items():
            if not isinstance(key, str) or not re.match(r"^[a-z_]{1,64}$", key):
                raise ValueError("limit name %s is not a config key" % _shown(key))
            lines.append("%s = %d" % (key, _count(value, "limits[%r]" % key, 0)))
    if pools:
        lines.append("[pools]")
        for size, count in pools.items():
            count = _count(count, "pools[%s] (the chunk count)" % _shown(size), 1)
            lines.append("%s = %d" % (_size_key(size), count))
    return "\n".join(lines) + "\n"


# ---- the daemon dies with its parent ------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _prctl():
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):  # pragma: no cover - not Linux
        return None


def _dies_with_parent():
    """A preexec_fn for Popen: the child gets SIGTERM when its parent (thread) dies.
    Everything it needs is bound here, before the fork."""
    prctl = _prctl()
    if prctl is None:  # pragma: no cover
        return None
    parent = os.getpid()
    sigterm = int(signal.SIGTERM)
    getppid, exit_now = os.getppid, os._exit

    def preexec():
        prctl(_PR_SET_PDEATHSIG, sigterm, 0, 0, 0)
        if getppid() != parent:  # the parent died before the prctl: nobody to serve
            exit_now(1)
    return preexec


class _Spawner:
    """One thread per process that forks every shoald (see the module doc): a
    PR_SET_PDEATHSIG child is signalled when the thread that forked it ends."""

    _lock = threading.Lock()
    _thread = None
    _jobs = None

    @classmethod
    def run(cls, fn):
        """fn() on the spawner thread; its result or its exception."""
        with cls._lock:
            if cls._thread is None or not cls._thread.is_alive():  # first use, or a fork
                import queue

                cls._jobs = queue.SimpleQueue()
                cls._thread = threading.Thread(target=cls._loop, args=(cls._jobs,),
                                               name="shoal-daemon-spawner", daemon=True)
                cls._thread.start()
            jobs = cls._jobs
        box, done = [], threading.Event()
        jobs.put((fn, box, done))
        try:
            done.wait()
        except BaseException:  # e.g. Ctrl-C: let the job finish, undo what it started
            done.wait()
            if box and box[0][0] and hasattr(box[0][1], "kill"):
                box[0][1].kill()
                box[0][1].wait()
            raise
        ok, value = box[0]
        if ok:
            return value
        raise value

    @staticmethod
    def _loop(jobs):
        while True:
            fn, box, done = jobs.get()
            try:
                box.append((True, fn()))
            except BaseException as e:  # handed to the caller
                box.append((False, e))
            finally:
                done.set()
            del fn, box, done


class Daemon:
    """A shoald process for one domain, started on entry and stopped on exit.

    Parameters: ``domain`` (default: a fresh unique name), ``pools`` ({chunk size:
    count}, sizes as int bytes or "64K"/"1M"/"1G"; None: the daemon's defaults),
    ``limits`` ({"servers": 4, ...}: keys of the [limits] section), ``runtime_dir``
    (None: $SHOAL_RUNTIME_DIR or /tmp/shoal-<uid>, like the C library), ``log_level``
    (off/error/warn/info/debug/trace), ``executable`` (default: find_shoald()),
    ``start_timeout`` (seconds to wait for "ready").

    The shoald dies with this process (SIGTERM through PR_SET_PDEATHSIG), also when
    this process is killed, whichever thread created the Daemon.

    Attributes: ``domain``, ``runtime_dir``, ``pid``, ``config_path``, ``returncode``;
    ``log()`` returns what the daemon wrote to stderr; ``runtime(name)`` connects a
    shoal.Runtime to it.
    """

    def __init__(self, domain=None, pools=None, limits=None, runtime_dir=None,
                 log_level="warn", executable=None, start_timeout=10.0, start=True):
        if domain is None:
            domain = "py%d-%s" % (os.getpid(), os.urandom(4).hex())
        if not isinstance(domain, str):
            raise TypeError("domain must be a str, not %s" % type(domain).__name__)
        if not _DOMAIN_RE.match(domain):
            raise ValueError("domain %s: 1..63 characters of [A-Za-z0-9_.-]" % _shown(domain))
        self.domain = domain
        self.runtime_dir = runtime_dir
        self.log_level = log_level
        self.start_timeout = start_timeout
        self._config = config_text(pools, limits)
        self._executable = executable
        self._proc = None
        self._tmpdir = None
        self._logfile = None
        self.config_path = None
        self.returncode = None
        if start:
            self.start()

    @property
    def pid(self):
        return None if self._proc is None else self._proc.pid

    @property
    def running(self):
        return self._proc is not None and self._proc.poll() is None

    def log(self):
        """Everything the daemon wrote to stderr so far."""
        if self._logfile is None:
            return getattr(self, "_last_log", "")
        with open(self._logfile.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def start(self):
        if self._proc is not None:
            raise DaemonError("daemon for domain %r already started" % self.domain)
        exe = self._executable or find_shoald()
        self._tmpdir = tempfile.mkdtemp(prefix="shoal-daemon-")
        self.config_path = os.path.join(self._tmpdir, "%s.conf" % self.domain)
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(self._config)
        self._logfile = open(os.path.join(self._tmpdir, "shoald.log"), "w+b")
        if self.runtime_dir is not None:
            os.makedirs(self.runtime_dir, mode=0o700, exist_ok=True)
        rfd, wfd = os.pipe()
        args = [exe, "--domain", self.domain, "--config", self.config_path,
                "--log-level", str(self.log_level), "--ready-fd", str(wfd)]
        if self.runtime_dir is not None:
            args += ["--runtime-dir", self.runtime_dir]
        try:
            logfile, preexec = self._logfile, _dies_with_parent()
            # a child daemon must not report readiness for this process's own service
            env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
            self._proc = _Spawner.run(lambda: subprocess.Popen(
                args, pass_fds=(wfd,), stdin=subprocess.DEVNULL, stdout=logfile,
                stderr=logfile, preexec_fn=preexec, env=env))
        except BaseException:
            os.close(rfd)
            os.close(wfd)
            self._cleanup_files()
            raise
        os.close(wfd)
        try:
            self._wait_ready(rfd)
        except BaseException:
            self.stop()
            raise
        finally:
            os.close(rfd)
        return self

    def _wait_ready(self, rfd):
        deadline = time.monotonic() + self.start_timeout
        got = b""
        while b"ready" not in got:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DaemonError("shoald for domain %r did not report ready within %gs; log:\n%s"
                                  % (self.domain, self.start_timeout,
                                     self._explained(self.log())))
            readable, _, _ = select.select([rfd], [], [], remaining)
            if not readable:
                continue
            data = os.read(rfd, 64)
            if not data:  # closed without "ready": it failed to start
                try:
                    code = self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    code = None
                raise DaemonError("shoald for domain %r failed to start (exit code %s: %s):\n%s"
                                  % (self.domain, code, _EXIT_MEANING.get(code, "unknown"),
                                     self._explained(self.log().strip())))
            got += data

    def _explained(self, text):
        """The daemon's words about the config file this object wrote, in terms of the
        pools= and limits= it was given (the file itself is temporary)."""
        path = self.config_path
        if not path:
            return text
        lines = self._config.splitlines()

        def entry(m):
            n = int(m.group(1))
            section = "config"
            for line in lines[:n]:
                if line.startswith("["):
                    section = line.strip("[]")
            line = lines[n - 1].strip() if 0 < n <= len(lines) else "?"
            return "shoal.Daemon(%s=...), entry %r:" % (section, line)

        text = re.sub(re.escape(path) + r":(\d+):", entry, text)
        return text.replace(path, "the config shoal.Daemon wrote from its pools= and limits=")

    def stop(self, timeout=5.0):
        """SIGTERM, wait up to `timeout` seconds, then SIGKILL. Returns the exit code."""
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self.returncode = proc.returncode
            self._proc = None
        self._cleanup_files()
        return self.returncode

    close = stop

    def _cleanup_files(self):
        if self._logfile is not None:
            self._last_log = self.log()
            self._logfile.close()
            self._logfile = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def runtime(self, name=None, connect_timeout=5.0):
        """A shoal.Runtime connected to this daemon's domain and runtime dir."""
        from ._api import Runtime
        return Runtime(name, domain=self.domain, runtime_dir=self.runtime_dir,
                       connect_timeout=connect_timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def __del__(self):
        try:
            if self._proc is not None:
                self.stop()
        except Exception:
            pass

    def __repr__(self):
        return "<shoal.Daemon domain=%r pid=%s%s>" % (
            self.domain, self.pid, "" if self.running else " stopped")


def main(argv=None):
    """Run the bundled shoald with `argv` (default: sys.argv[1:]); replaces this process."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        exe = find_shoald(use_path=False)
    except DaemonError as e:
        print("shoald: %s" % e, file=sys.stderr)
        return 127
    os.execv(exe, [exe] + argv)
    return 127  # not reached


