"""The daemon's death is never silent: blocked takes wake with
DaemonUnavailableError, later calls fail with it, and the documented recovery
pattern (a new Runtime once a daemon runs again) works."""

import os
import signal
import threading
import time
import uuid

import pytest

import shoal


def _domain():
    return "death-" + uuid.uuid4().hex[:8]


def test_blocked_take_wakes_when_the_daemon_is_killed():
    daemon = shoal.Daemon(domain=_domain(), pools={64: 16})
    try:
        rt = shoal.Runtime("victim", domain=daemon.domain, runtime_dir=daemon.runtime_dir)
        sub = rt.subscriber("death/topic")
        pub = rt.publisher("death/topic")
        outcome = {}

        def blocked():
            try:
                with sub.take(timeout=None):
                    outcome["error"] = None
            except Exception as e:  # noqa: BLE001 - the test inspects it
                outcome["error"] = e
            outcome["at"] = time.monotonic()

        t = threading.Thread(target=blocked)
        t.start()
        time.sleep(0.2)  # asleep in take()
        killed_at = time.monotonic()
        os.kill(daemon.pid, signal.SIGKILL)
        t.join(5)
        assert not t.is_alive(), "take(timeout=None) still blocked 5 s after the daemon died"
        assert isinstance(outcome["error"], shoal.DaemonUnavailableError), outcome
        assert outcome["at"] - killed_at < 0.5
        # every later call on the old runtime's ports fails the same way
        with pytest.raises(shoal.DaemonUnavailableError):
            pub.publish(b"x")
        with pytest.raises(shoal.DaemonUnavailableError):
            sub.try_take()
        rt.close()
    finally:
        daemon.stop()


def test_recovery_pattern_after_a_restart():
    domain = _domain()
    daemon = shoal.Daemon(domain=domain, pools={64: 16})
    runtime_dir = daemon.runtime_dir
    rt = shoal.Runtime("app", domain=domain, runtime_dir=runtime_dir)
    sub = rt.subscriber("death/again")
    os.kill(daemon.pid, signal.SIGKILL)
    with pytest.raises(shoal.DaemonUnavailableError):
        with sub.take(timeout=5.0):
            pass
    rt.close()
    # a new daemon on the same domain; the application starts over with a new Runtime
    daemon2 = shoal.Daemon(domain=domain, pools={64: 16}, runtime_dir=runtime_dir)
    try:
        with shoal.Runtime("app", domain=domain, runtime_dir=runtime_dir) as rt2:
            pub, sub = rt2.publisher("death/again"), rt2.subscriber("death/again")
            pub.publish(b"back")
            with sub.take(timeout=1.0) as s:
                assert bytes(s.payload) == b"back"
    finally:
        daemon2.stop()
        daemon.stop()


def test_sigterm_of_the_daemon_is_reported_as_daemon_unavailable():
    daemon = shoal.Daemon(domain=_domain(), pools={64: 16})
    try:
        rt = shoal.Runtime("victim", domain=daemon.domain, runtime_dir=daemon.runtime_dir)
        sub = rt.subscriber("death/term")
        outcome = {}

        def blocked():
            try:
                with sub.take(timeout=10.0):
                    outcome["error"] = None
            except Exception as e:  # noqa: BLE001 - the test inspects it
                outcome["error"] = e

        t = threading.Thread(target=blocked)
        t.start()
        time.sleep(0.2)
        os.kill(daemon.pid, signal.SIGTERM)
        t.join(5)
        assert not t.is_alive()
        assert isinstance(outcome["error"], shoal.DaemonUnavailableError), outcome
        rt.close()
    finally:
        daemon.stop()


# ---- a shoal.Daemon dies with the process that started it -------------------------------

PARENT_SCRIPT = r'''
import sys, threading, time
import shoal

domain, runtime_dir = sys.argv[1:3]
box = []
# created by a thread that ends at once: the daemon must outlive the thread, not the process
t = threading.Thread(target=lambda: box.append(
    shoal.Daemon(domain=domain, runtime_dir=runtime_dir, pools={64: 16})))
t.start()
t.join()
time.sleep(0.3)
print(box[0].pid, flush=True)
time.sleep(120)
'''


def _alive(pid):
    """True while `pid` runs (a zombie nobody reaps counts as dead)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_daemon_dies_with_its_parent_process(tmp_path):
    import subprocess
    import sys

    import shoal_workers

    domain, runtime_dir = _domain(), str(tmp_path)
    parent = subprocess.Popen([sys.executable, "-c", PARENT_SCRIPT, domain, runtime_dir],
                              stdout=subprocess.PIPE, env=shoal_workers.child_env(), text=True)
    try:
        line = parent.stdout.readline()
        assert line.strip().isdigit(), "the parent did not start a daemon: %r" % line
        daemon_pid = int(line)
        assert _alive(daemon_pid)   # its creating thread is gone, the daemon is not
        with shoal.Runtime("before", domain=domain, runtime_dir=runtime_dir) as rt:
            assert rt.pools()[0].chunk_count == 16
    finally:
        parent.kill()               # SIGKILL: no atexit, no __del__, no finally
        parent.wait(30)
        parent.stdout.close()
    deadline = time.monotonic() + 10
    while _alive(daemon_pid):
        assert time.monotonic() < deadline, "shoald %d outlived its parent" % daemon_pid
        time.sleep(0.02)
    # the domain is free again: a new daemon starts on it and works
    with shoal.Daemon(domain=domain, runtime_dir=runtime_dir, pools={64: 8}) as daemon:
        with daemon.runtime("after") as rt:
            pub, sub = rt.publisher("again"), rt.subscriber("again")
            pub.publish(b"back")
            with sub.take(timeout=5) as s:
                assert bytes(s.payload) == b"back"
    assert daemon.returncode == 0
