"""The examples run, and the daemon entry points work."""

import os
import shutil
import subprocess
import sys

import pytest

import shoal
import shoal_workers

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
EXAMPLES = os.path.join(ROOT, "examples", "python")


def _run(args, **kw):
    return subprocess.run(args, env=shoal_workers.child_env(), capture_output=True, text=True,
                          timeout=120, **kw)


def test_request_response_example():
    out = _run([sys.executable, os.path.join(EXAMPLES, "request_response.py")])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "40 + 2 = 42" in out.stdout and "1000 + 337 = 1337" in out.stdout


def test_publish_subscribe_example_on_existing_domain(shoal_daemon):
    out = _run([sys.executable, os.path.join(EXAMPLES, "publish_subscribe.py"),
                "--domain", shoal_daemon.domain, "--runtime-dir", shoal_daemon.runtime_dir])
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("1048576 bytes") == 10, out.stdout


def test_numpy_arrays_example():
    pytest.importorskip("numpy")
    out = _run([sys.executable, os.path.join(EXAMPLES, "numpy_arrays.py")])
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("array ")]
    assert len(lines) == 3, out.stdout
    for i, line in enumerate(lines):
        assert "shape (5000, 5000), 100 MB" in line and "zero-copy True" in line, line
        assert "row 0 mean %.1f" % (2499.5 + i) in line and "corner %.1f" % (1000 + i) in line


def test_python_m_shoal_daemon():
    out = _run([sys.executable, "-m", "shoal.daemon", "--version"])
    assert out.returncode == 0, out.stderr
    assert shoal.version() in out.stdout
    out = _run([sys.executable, "-m", "shoal.daemon", "--print-config"])
    assert out.returncode == 0 and "[limits]" in out.stdout, out.stdout + out.stderr


def test_shoald_console_script():
    script = shutil.which("shoald", path=os.path.dirname(sys.executable)) or shutil.which("shoald")
    if script is None:
        pytest.skip("the shoald console script is installed by `pip install .` only")
    out = _run([script, "--version"])
    assert out.returncode == 0 and shoal.version() in out.stdout, out.stdout + out.stderr
