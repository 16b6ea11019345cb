"""The pytest plugin: fixtures and the leak check, run in a pytest of its own."""

import os
import subprocess
import sys
import textwrap

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
