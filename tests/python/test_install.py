"""Issue 11.6 / 14.4: what `pip install` puts on a machine, and a build without a compiler."""

import os
import shutil
import subprocess
import sys

import pytest

import shoal
import shoal_workers

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))


def _run(args, env=None, **kw):
    return subprocess.run(args, env=env or shoal_workers.child_env(), capture_output=True,
                          text=True, timeout=120, **kw)


def _console_script(name):
    script = shutil.which(name, path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip("the %s console script is installed by `pip install .` only" % name)
    return script


def test_shoal_tool_console_script_reads_the_domain(shoal_daemon):
    script = _console_script("shoal")
    out = _run([script, "--version"])
    assert out.returncode == 0 and shoal.version() in out.stdout, out.stdout + out.stderr
    out = _run([script, "--domain", shoal_daemon.domain, "--runtime-dir",
                shoal_daemon.runtime_dir, "pools"])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "64" in out.stdout, out.stdout
    # a domain nobody serves: exit 1 and a message naming it, not a traceback
    out = _run([script, "--domain", "nobody-serves-this", "--runtime-dir",
                shoal_daemon.runtime_dir, "status"])
    assert out.returncode == 1, out.stdout + out.stderr
    assert "nobody-serves-this" in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_python_m_shoal_cli(shoal_daemon):
    out = _run([sys.executable, "-m", "shoal.cli", "--domain", shoal_daemon.domain,
                "--runtime-dir", shoal_daemon.runtime_dir, "status"])
    assert out.returncode == 0, out.stdout + out.stderr
    assert shoal_daemon.domain in out.stdout, out.stdout
    out = _run([sys.executable, "-m", "shoal.cli", "--help"])
    assert out.returncode == 0 and "usage: shoal" in out.stdout, out.stdout + out.stderr


def test_bundled_binaries_are_executables_of_this_version():
    from shoal.cli import find_shoal_tool

    for exe in (shoal.find_shoald(use_path=False), find_shoal_tool(use_path=False)):
        assert os.access(exe, os.X_OK), exe
        out = _run([exe, "--version"])
        assert out.returncode == 0 and shoal.version() in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize("cc", ["/bin/false", "/nonexistent/cc"])
def test_build_without_a_compiler_says_so_in_one_line(cc, tmp_path):
    """setup.py with a compiler that does not work: one line, no traceback, no build."""
    if not os.path.exists(os.path.join(ROOT, "setup.py")):
        pytest.skip("needs the source tree")
    pytest.importorskip("setuptools")
    env = dict(shoal_workers.child_env(), CC=cc)
    out = _run([sys.executable, os.path.join(ROOT, "setup.py"), "build_ext", "--build-lib",
                str(tmp_path / "lib"), "--build-temp", str(tmp_path / "tmp")], env=env, cwd=ROOT)
    assert out.returncode == 1, out.stdout + out.stderr
    err = out.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert "C compiler" in err and cc in err and "wheel" in err, err
    assert not (tmp_path / "lib").exists()


def test_daemon_child_does_not_notify_the_parents_service_manager(tmp_path):
    """A shoal.Daemon started by a process that runs under systemd (Type=notify) must not
    tell systemd that *that* service is ready: NOTIFY_SOCKET is not passed to the child."""
    import socket

    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.5)
    old = os.environ.get("NOTIFY_SOCKET")
    os.environ["NOTIFY_SOCKET"] = path
    try:
        with shoal.Daemon(domain="notify-%d" % os.getpid(), pools={64: 4},
                          runtime_dir=str(tmp_path / "run")):
            with pytest.raises(socket.timeout):
                sock.recv(4096)
    finally:
        if old is None:
            del os.environ["NOTIFY_SOCKET"]
        else:
            os.environ["NOTIFY_SOCKET"] = old
        sock.close()
    # and the same daemon binary does notify when it is given the socket itself
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    os.unlink(path)
    sock.bind(path)
    sock.settimeout(10)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    proc = subprocess.Popen([shoal.find_shoald(), "--domain", "notify2-%d" % os.getpid(),
                             "--runtime-dir", str(tmp_path / "run2")], env=env,
                            stderr=subprocess.DEVNULL)
    try:
        msg = sock.recv(4096).decode()
        assert "READY=1" in msg and "MAINPID=%d" % proc.pid in msg, msg
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        sock.close()
