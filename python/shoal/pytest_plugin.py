"""pytest plugin of shoal (registered as the ``pytest11`` entry point ``shoal``).

Fixtures
  ``shoal_daemon``   (session) a real shoald on a domain and runtime dir of its own;
                     $SHOAL_DOMAIN and $SHOAL_RUNTIME_DIR point at it for the session,
                     so ``shoal.Runtime()`` and child processes connect to it.
                     Override the session fixture ``shoal_daemon_options`` (a dict of
                     shoal.Daemon keyword arguments: pools, limits, log_level) to
                     configure it.
  ``shoal_runtime``  (function) a shoal.Runtime connected to that daemon, closed after
                     the test.

Leak check
  Every test that uses ``shoal_daemon`` (directly, through ``shoal_runtime`` or through a
  fixture of its own) is checked, whichever Runtime objects it makes. It fails when, at
  its end:
  - a port of this process holds more chunks than at its start (asked of the daemon of
    every domain this process has a Runtime on), naming the port and the count;
  - a chunk object made during the test still owns its chunk (never sent or released);
  - a chunk released during the test still waits for a view or numpy array of its
    payload that outlived it (a deferred release, see shoal.Chunk);
  - a chunk was released by the garbage collector instead of a ``with`` block or
    ``release()``.
  Each chunk is named with the file and line where it was loaned or taken (the first
  frame outside the shoal package). Mark a test ``@pytest.mark.shoal_allow_leaks`` to
  skip the check. The locations are recorded by a hook of ``shoal._api`` that is set
  only while a checked test runs (``shoal._api._chunk_hook``); other code pays nothing.
"""

import os
import sys
import tempfile
import threading
import weakref

import pytest

DEFAULT_DAEMON_OPTIONS = {
    "pools": {64: 1024, "1K": 1024, "64K": 256, "1M": 64, "16M": 8},
    "log_level": "warn",
}

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "shoal_allow_leaks: do not fail the test when its ports still hold chunks")


@pytest.fixture(scope="session")
def shoal_daemon_options():
    """Keyword arguments of shoal.Daemon for the session daemon (override to configure)."""
    return dict(DEFAULT_DAEMON_OPTIONS)


@pytest.fixture(scope="session")
def shoal_daemon(shoal_daemon_options):
    """A shoald of its own for the test session (isolated domain and runtime dir)."""
    import shoal

    # A short path: Unix socket paths are limited to 107 bytes.
    runtime_dir = tempfile.mkdtemp(prefix="shoal-pytest-")
    options = dict(shoal_daemon_options)
    options.setdefault("domain", "pytest-%d" % os.getpid())
    options.setdefault("runtime_dir", runtime_dir)
    saved = {k: os.environ.get(k) for k in ("SHOAL_DOMAIN", "SHOAL_RUNTIME_DIR")}
    daemon = shoal.Daemon(**options)
    os.environ["SHOAL_DOMAIN"] = daemon.domain
    os.environ["SHOAL_RUNTIME_DIR"] = daemon.runtime_dir
    try:
        yield daemon
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        daemon.stop()
        try:
            os.rmdir(runtime_dir)
        except OSError:
            pass


@pytest.fixture
def shoal_runtime(shoal_daemon, request):
    """A shoal.Runtime on the session daemon, closed after the test."""
    import shoal

    rt = shoal.Runtime(("pytest-" + request.node.name)[:63], domain=shoal_daemon.domain,
                       runtime_dir=shoal_daemon.runtime_dir)
    try:
        yield rt
    finally:
        rt.close()


# ---- where chunks were taken ----------------------------------------------------------

def _shown_path(path):
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith(os.pardir + os.sep) else rel


def _caller():
    """'file:line (function)' of the first frame outside the shoal package."""
    frame = sys._getframe(2)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return "an unknown place"
    return "%s:%d (%s)" % (_shown_path(frame.f_code.co_filename), frame.f_lineno,
                           frame.f_code.co_name)


class _Record:
    __slots__ = ("ref", "where", "what", "port", "buf", "gc")

    def __init__(self, chunk, where, callback):
        self.ref = weakref.ref(chunk, callback)
        self.where = where
        self.what = chunk._what
        self.port = chunk._port._describe()
        self.buf = chunk._buf   # the Payload: says whether a release is deferred
        self.gc = False

    def payload(self):
        chunk = self.ref()
        return self.buf if chunk is None else chunk._buf   # set_size() replaces it


class _Tracker:
    """The hook of shoal._api while one test runs: records every chunk object made, and
    keeps the records of the ones that matter once their object is gone (released by
    the garbage collector, or released with a deferred release)."""

    def __init__(self):
        self.live = {}    # id(chunk) -> _Record, while the object may live
        self.kept = []    # records of dead objects worth reporting
        # reentrant: a collection inside a locked section may run _died on this thread
        self.lock = threading.RLock()

    def __call__(self, event, chunk):
        if event == "new":
            key = id(chunk)
            with self.lock:
                self.live[key] = _Record(chunk, _caller(), lambda ref: self._died(key, ref))
        elif event == "gc":
            with self.lock:
                rec = self.live.get(id(chunk))
                if rec is None:
                    return
                rec.gc = True
                if rec.ref() is None:   # cyclic garbage: the weak reference died first
                    del self.live[id(chunk)]
                    self.kept.append(rec)

    def _died(self, key, ref):
        with self.lock:
            rec = self.live.get(key)
            if rec is None or rec.ref is not ref:
                return
            if rec.gc or rec.buf.deferred:
                del self.live[key]
                self.kept.append(rec)
            elif rec.buf.closed:
                del self.live[key]
            # else: dying in a cycle, still owning its chunk: __del__ reports "gc" next

    def records(self):
        with self.lock:
            return list(self.live.values()) + self.kept

    def lines(self):
        out = []
        for rec in self.records():
            chunk = rec.ref()
            if rec.gc:
                out.append("%s of %s taken at %s: released by the garbage collector"
                           % (rec.what, rec.port, rec.where))
            elif chunk is not None and chunk._handle is not None:
                out.append("%s of %s taken at %s: never released (use a with block or "
                           ".release())" % (rec.what, rec.port, rec.where))
            elif rec.payload().deferred:
                out.append("%s of %s taken at %s: released, but a view or numpy array of "
                           "its payload outlived it (deferred release)"
                           % (rec.what, rec.port, rec.where))
        return sorted(out)


# ---- what the daemon says -------------------------------------------------------------

def _runtimes(item):
    """One open Runtime of this process per (domain, runtime dir)."""
    from . import _api

    candidates = list(_api._live_runtimes)
    rt = getattr(item, "funcargs", {}).get("shoal_runtime")
    if rt is not None:
        candidates.insert(0, rt)
    out = {}
    for rt in candidates:
        if rt.closed or rt._pid != os.getpid():   # closed, or inherited through fork
            continue
        try:
            key = (rt.domain, rt._runtime_dir or os.environ.get("SHOAL_RUNTIME_DIR"))
        except Exception:
            continue
        out.setdefault(key, rt)
    return out


def _held(item):
    """{(domain, slot, port id): PortInfo} of the ports of this process holding chunks."""
    pid = os.getpid()
    held = {}
    for key, rt in _runtimes(item).items():
        try:
            ports = rt.ports(pid=pid)
        except Exception:  # a closed or dead daemon: nothing to ask
            continue
        for port in ports:
            if port.held > 0:
                held[(key, port.slot, port.id)] = port
    return held


def _leak_report(item, held_before, gc_before, tracker):
    from . import _api

    lines = []
    for key, port in sorted(_held(item).items(), key=lambda kv: kv[1].slot):
        grown = port.held - (held_before[key].held if key in held_before else 0)
        if grown > 0:
            lines.append("%s %r (slot %d, process %r) still holds %d chunk(s)%s"
                         % (port.kind.name.lower(), port.service, port.slot, port.process,
                            port.held, "" if grown == port.held else
                            " (%d more than at the start of the test)" % grown))
    deferred = {}
    for rec in tracker.records():
        chunk = rec.ref()
        if (chunk is None or chunk._handle is None) and rec.payload().deferred:
            deferred[rec.port] = deferred.get(rec.port, 0) + 1
    for where, count in sorted(deferred.items()):
        lines.append("%s: %d released chunk(s) still wait for a view or numpy array of their "
                     "payload that outlived the chunk object (drop it: del, or .release() on "
                     "a memoryview)" % (where, count))
    for where, count in sorted((_api.gc_releases - gc_before).items()):
        lines.append("%s: %d chunk(s) were released only by the garbage collector "
                     "(not by a with block or release())" % (where, count))
    chunks = tracker.lines()
    if lines or chunks:
        lines += ["where:"] + ["  " + line for line in chunks]
    return lines


def _checked(item):
    return "shoal_daemon" in getattr(item, "fixturenames", ()) and \
        item.get_closest_marker("shoal_allow_leaks") is None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    if not _checked(item):
        return (yield)
    from . import _api

    held_before = _held(item)
    gc_before = _api.gc_releases.copy()
    tracker = _Tracker()
    previous, _api._chunk_hook = _api._chunk_hook, tracker
    try:
        result = yield  # a failing test keeps its own failure
    finally:
        _api._chunk_hook = previous
    leaks = _leak_report(item, held_before, gc_before, tracker)
    if leaks:
        pytest.fail("shoal leak check: chunks not released at the end of the test:\n  "
                    + "\n  ".join(leaks), pytrace=False)
    return result
