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
  After each test that uses ``shoal_runtime``, every port of this process that still
  holds chunks (loaned or taken, not released) fails the test, naming the port (kind,
  service) and how many chunks it holds, and says which of them a view or numpy array of
  the payload keeps after its release (see Chunk). Chunks that were only released by the
  garbage collector during the test (instead of by a ``with`` block or release())
  count as leaks too. Mark a test ``@pytest.mark.shoal_allow_leaks`` to skip the check.
"""

import os
import tempfile

import pytest

DEFAULT_DAEMON_OPTIONS = {
    "pools": {64: 1024, "1K": 1024, "64K": 256, "1M": 64, "16M": 8},
    "log_level": "warn",
}


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


def _leak_report(rt, gc_before):
    from . import _api

    lines = []
    for port in rt.ports(pid=os.getpid()):
        if port.held > 0:
            lines.append("%s %r (slot %d, process %r) still holds %d chunk(s)"
                         % (port.kind.name.lower(), port.service, port.slot, port.process,
                            port.held))
    for where, count in sorted(rt.deferred_releases().items()):
        lines.append("%s: %d released chunk(s) still wait for a view or numpy array of their "
                     "payload that outlived the chunk object (drop it: del, or .release() on "
                     "a memoryview)" % (where, count))
    for where, count in sorted((_api.gc_releases - gc_before).items()):
        lines.append("%s: %d chunk(s) were released only by the garbage collector "
                     "(not by a with block or release())" % (where, count))
    return lines


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    if "shoal_runtime" not in getattr(item, "fixturenames", ()) or \
            item.get_closest_marker("shoal_allow_leaks") is not None:
        return (yield)
    from . import _api

    gc_before = _api.gc_releases.copy()
    result = yield  # a failing test keeps its own failure
    rt = item.funcargs.get("shoal_runtime")
    if rt is None or rt.closed:
        return result
    leaks = _leak_report(rt, gc_before)
    if leaks:
        pytest.fail("shoal leak check: chunks not released at the end of the test:\n  "
                    + "\n  ".join(leaks), pytrace=False)
    return result
