"""The pytest plugin: fixtures and the leak check, run in a pytest of its own."""

import os
import subprocess
import sys
import textwrap

import pytest

import shoal_workers

try:
    from importlib.metadata import entry_points
except ImportError:  # pragma: no cover
    entry_points = None


def _plugin_args():
    """-p for the plugin unless the installed package registers it already."""
    if entry_points is not None:
        eps = entry_points()
        group = eps.select(group="pytest11") if hasattr(eps, "select") else eps.get("pytest11", [])
        if any(ep.name == "shoal" for ep in group):
            return []
    return ["-p", "shoal.pytest_plugin"]


INNER = '''
import pytest
import shoal

LEAKED = []

def test_clean(shoal_runtime):
    pub = shoal_runtime.publisher("plug/clean")
    sub = shoal_runtime.subscriber("plug/clean")
    pub.publish(b"hello")
    with sub.take(timeout=1) as s:
        assert bytes(s.payload) == b"hello"

def test_leaks_a_sample(shoal_runtime):
    pub = shoal_runtime.publisher("plug/leak")
    sub = shoal_runtime.subscriber("plug/leak")
    pub.publish(b"hello")
    LEAKED.append(sub.take(timeout=1))   # never released

def test_leaks_into_gc(shoal_runtime):
    pub = shoal_runtime.publisher("plug/gc")
    loan = pub.loan(64)                  # dropped without release: the GC does it

def test_keeps_a_payload_slice(shoal_runtime):
    pub = shoal_runtime.publisher("plug/slice")
    sub = shoal_runtime.subscriber("plug/slice")
    pub.publish(b"hello")
    with sub.take(timeout=1) as s:
        LEAKED.append(s.payload[1:3])    # outlives the block: the release waits for it

@pytest.mark.shoal_allow_leaks
def test_allowed(shoal_runtime):
    LEAKED.append(shoal_runtime.publisher("plug/allowed").loan(64))

def test_env_points_at_session_daemon(shoal_daemon):
    import os
    assert os.environ["SHOAL_DOMAIN"] == shoal_daemon.domain
    with shoal.Runtime("from-env") as rt:
        assert rt.domain == shoal_daemon.domain
'''


def test_plugin_fixtures_and_leak_check(tmp_path):
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER))
    env = shoal_workers.child_env()
    for key in ("SHOAL_DOMAIN", "SHOAL_RUNTIME_DIR"):
        env.pop(key, None)   # the inner session must start its own daemon
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W",
         "ignore::ResourceWarning", "--rootdir", str(tmp_path)] + _plugin_args()
        + [str(tmp_path / "test_inner.py")],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "3 failed, 3 passed" in text, text
    assert "FAILED test_inner.py::test_leaks_a_sample" in text, text
    assert "subscriber 'plug/leak'" in text and "still holds 1 chunk(s)" in text, text
    assert "FAILED test_inner.py::test_leaks_into_gc" in text, text
    assert "FAILED test_inner.py::test_keeps_a_payload_slice" in text, text
    assert "subscriber 'plug/slice': 1 released chunk(s) still wait for a view" in text, text
    assert "publisher 'plug/gc': 1 chunk(s) were released only by the garbage collector" in text, \
        text


# Tests that use only the daemon fixture and make their own Runtime objects; the
# comments "# <mark>" name the lines where the leaked chunks are taken.
DAEMON_ONLY = '''\
import pytest
import shoal

KEPT = []

def test_clean(shoal_daemon):
    with shoal.Runtime("clean") as rt:
        pub, sub = rt.publisher("d/clean"), rt.subscriber("d/clean")
        pub.publish(b"hello")
        with sub.take(timeout=1) as s:
            assert bytes(s.payload) == b"hello"
        pub.publish(b"again")
        with sub.take(timeout=1) as s:
            head = s.payload[:2]             # outlives the block: a deferred release ...
        assert bytes(head) == b"ag"
        del head                             # ... that ends inside the test

def test_leaks_a_sample(shoal_daemon):
    rt = shoal.Runtime("leaker")
    KEPT.append(rt)
    pub, sub = rt.publisher("d/leak"), rt.subscriber("d/leak")
    pub.publish(b"hello")
    KEPT.append(sub.take(timeout=1))     # <leak> never released

def test_keeps_an_array(shoal_daemon):
    import numpy
    rt = shoal.Runtime("keeper")
    KEPT.append(rt)
    pub, sub = rt.publisher("d/defer"), rt.subscriber("d/defer")
    pub.publish(bytes(range(16)))
    with sub.take(timeout=1) as s:       # <defer>
        KEPT.append(numpy.frombuffer(s.payload, dtype="uint8"))

def test_gc_release(shoal_daemon):
    rt = shoal.Runtime("forgetful")
    KEPT.append(rt)
    pub = rt.publisher("d/gc")
    loan = pub.loan(64)                  # <gc> dropped without a release

def test_gc_release_in_a_cycle(shoal_daemon):
    import gc
    rt = shoal.Runtime("cyclic")
    KEPT.append(rt)
    box = [rt.publisher("d/cycle").loan(64)]   # <cycle>
    box.append(box)                            # only the cycle collector frees it
    del box
    gc.collect()

def test_own_daemon_and_helper(shoal_daemon):
    d = shoal.Daemon(pools={64: 16})     # a second domain, alive past the test
    rt = d.runtime("other")
    KEPT.extend([d, rt, take_one(rt)])

def take_one(rt):
    pub, sub = rt.publisher("d/helper"), rt.subscriber("d/helper")
    pub.publish(b"x")
    return sub.take(timeout=1)           # <helper>

def test_closed_runtime_is_clean(shoal_daemon):
    rt = shoal.Runtime("closer")
    sub = rt.subscriber("d/closed")
    rt.publisher("d/closed").publish(b"x")
    s = sub.take(timeout=1)
    rt.close()                           # closing the runtime releases what it held
    assert s.released

@pytest.mark.shoal_allow_leaks
def test_allowed(shoal_daemon):
    rt = shoal.Runtime("allowed")
    KEPT.append(rt)
    KEPT.append(rt.publisher("d/allowed").loan(64))

def test_after_the_leaks_is_clean(shoal_daemon):
    # the chunks leaked by the tests above are still held: not this test's leaks
    with shoal.Runtime("later") as rt:
        rt.publisher("d/later").publish(b"x")
'''


def _run_inner(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    env = shoal_workers.child_env()
    for key in ("SHOAL_DOMAIN", "SHOAL_RUNTIME_DIR"):
        env.pop(key, None)   # the inner session must start its own daemon
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "-W",
         "ignore::ResourceWarning", "--rootdir", str(tmp_path)] + _plugin_args()
        + [str(tmp_path / name)],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
    return out.returncode, out.stdout + out.stderr


def _line(text, mark):
    """'test_daemon_only.py:N' of the line of DAEMON_ONLY marked '# <mark>'."""
    lines = text.splitlines()
    return "test_daemon_only.py:%d" % next(i + 1 for i, line in enumerate(lines)
                                          if "# <%s>" % mark in line)


def _section(text, test):
    """The failure section of `test` in pytest's report."""
    start = text.index("_ %s _" % test)
    # ends at the next test's section or at the summary after the last one
    ends = [e for e in (text.find("\n____", start + 1), text.find("\n====", start + 1))
            if e >= 0]
    return text[start:min(ends)] if ends else text[start:]


def test_leak_check_of_daemon_only_tests(tmp_path):
    pytest.importorskip("numpy")
    rc, text = _run_inner(tmp_path, "test_daemon_only.py", DAEMON_ONLY)
    assert rc == 1, text
    failed = sorted(line.split("::")[1].split()[0] for line in text.splitlines()
                    if line.startswith("FAILED "))
    assert failed == ["test_gc_release", "test_gc_release_in_a_cycle", "test_keeps_an_array",
                      "test_leaks_a_sample", "test_own_daemon_and_helper"], text
    assert "5 failed, 4 passed" in text, text

    leak = _section(text, "test_leaks_a_sample")
    assert "subscriber 'd/leak'" in leak and "still holds 1 chunk(s)" in leak, leak
    assert "sample of subscriber 'd/leak' taken at %s (test_leaks_a_sample): never " \
           "released" % _line(DAEMON_ONLY, "leak") in leak, leak

    defer = _section(text, "test_keeps_an_array")
    assert "subscriber 'd/defer': 1 released chunk(s) still wait for a view or numpy " \
           "array" in defer, defer
    assert "sample of subscriber 'd/defer' taken at %s (test_keeps_an_array): released, " \
           "but a view or numpy array of its payload outlived it (deferred release)" \
           % _line(DAEMON_ONLY, "defer") in defer, defer
    # reported as deferred, not as a chunk that was never released
    assert "never released" not in defer, defer

    gc = _section(text, "test_gc_release")
    assert "publisher 'd/gc': 1 chunk(s) were released only by the garbage collector" in gc
    assert "loan of publisher 'd/gc' taken at %s (test_gc_release): released by the " \
           "garbage collector" % _line(DAEMON_ONLY, "gc") in gc, gc

    cycle = _section(text, "test_gc_release_in_a_cycle")
    assert "loan of publisher 'd/cycle' taken at %s (test_gc_release_in_a_cycle): released " \
           "by the garbage collector" % _line(DAEMON_ONLY, "cycle") in cycle, cycle

    # a daemon of the test's own, and a chunk taken in a helper function
    other = _section(text, "test_own_daemon_and_helper")
    assert "subscriber 'd/helper'" in other and "still holds 1 chunk(s)" in other, other
    assert "sample of subscriber 'd/helper' taken at %s (take_one): never released" \
        % _line(DAEMON_ONLY, "helper") in other, other

    # each leak is reported once, by the test that made it
    for section in (leak, defer, gc, cycle, other):
        assert section.count("taken at") == 1, section


def test_leak_check_costs_nothing_outside_checked_tests(tmp_path):
    """The location hook is set only while a checked test runs."""
    text = '''\
import shoal._api as api

def test_unchecked():
    assert api._chunk_hook is None

def test_checked(shoal_daemon):
    assert api._chunk_hook is not None

def test_unchecked_after():
    assert api._chunk_hook is None
'''
    rc, out = _run_inner(tmp_path, "test_hook.py", text)
    assert rc == 0 and "3 passed" in out, out
