"""Errors: classes, messages, and that chunks are always released."""

import gc
import os
import time
import warnings

import pytest

import shoal


def test_error_hierarchy():
    assert issubclass(shoal.Timeout, shoal.Error)
    assert issubclass(shoal.Timeout, TimeoutError)
    assert issubclass(shoal.DaemonUnavailableError, ConnectionError)
    assert issubclass(shoal.ReleasedError, shoal.Error)
    assert issubclass(shoal.ReleasedError, ValueError)
    for cls in (shoal.PortLimitError, shoal.HeldLimitError, shoal.ProcessLimitError,
                shoal.ServiceLimitError):
        assert issubclass(cls, shoal.LimitError)


def test_pool_exhausted_names_the_pool():
    with shoal.Daemon(pools={64: 4, "1K": 2}) as daemon, daemon.runtime("exhaust") as rt:
        with rt.publisher("ex/pool") as pub:
            loans = [pub.loan(64) for _ in range(4)]
            with pytest.raises(shoal.PoolExhaustedError) as info:
                pub.loan(64)
            msg = str(info.value)
            assert "pool" in msg and "64" in msg, msg
            assert info.value.code == 3 and info.value.detail
            for loan in loans:
                loan.release()
            with pub.loan(64):
                pass
            assert rt.pools()[0].alloc_failures >= 1
            with pytest.raises(shoal.ChunkTooLargeError):
                pub.loan(4096)
            assert all(p.in_use == 0 for p in rt.pools())


def test_port_limit_names_the_limit():
    with shoal.Daemon(limits={"servers": 4}) as daemon, daemon.runtime("limits") as rt:
        servers = [rt.server("lim/%d" % i) for i in range(4)]
        with pytest.raises(shoal.PortLimitError) as info:
            rt.server("lim/one-too-many")
        msg = str(info.value)
        assert "limits.servers" in msg, msg
        assert "4" in msg
        assert isinstance(info.value, shoal.LimitError)
        servers[0].close()
        rt.server("lim/fits-again").close()
        # clients are limited separately
        rt.client("lim/0").close()


def test_held_limit():
    with shoal.Daemon(limits={"chunks_per_port": 2}) as daemon, daemon.runtime("held") as rt:
        pub = rt.publisher("held/topic")
        with pub.loan(64), pub.loan(64):
            with pytest.raises(shoal.HeldLimitError) as info:
                pub.loan(64)
            assert "chunks_per_port" in str(info.value), str(info.value)


def test_timeout_is_timeout_error(shoal_runtime):
    sub = shoal_runtime.subscriber("err/quiet")
    start = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        sub.take(timeout=0.3)
    elapsed = time.monotonic() - start
    assert isinstance(info.value, shoal.Timeout)
    assert 0.25 <= elapsed < 2.0, elapsed
    with pytest.raises(shoal.Timeout):
        sub.take(timeout=0)   # poll


def test_daemon_unavailable():
    with pytest.raises(shoal.DaemonUnavailableError) as info:
        shoal.Runtime("lonely", domain="no-such-domain-%d" % os.getpid(), connect_timeout=0.2)
    assert isinstance(info.value, ConnectionError)
    assert "shoald" in str(info.value), str(info.value)


def test_released_chunk_raises(shoal_runtime):
    pub = shoal_runtime.publisher("err/released")
    sub = shoal_runtime.subscriber("err/released")
    with pub.loan(16) as loan:
        view = loan.payload
        view[:] = b"0123456789abcdef"
        loan.send()
    with pytest.raises(shoal.ReleasedError):
        loan.payload  # noqa: B018
    with pytest.raises(shoal.ReleasedError):
        loan.send()
    with pytest.raises(ValueError):   # the view obtained before is released too
        view[0]  # noqa: B018
    with sub.take(timeout=1) as sample:
        kept = sample.payload
        assert bytes(kept) == b"0123456789abcdef"
        with pytest.raises(TypeError):   # received payloads are read-only
            kept[0] = 1
    assert sample.released
    for op in (lambda: sample.payload, lambda: sample.size, lambda: sample.sequence_id,
               sample.release):
        with pytest.raises(shoal.ReleasedError):
            op()
    with pytest.raises(ValueError):
        bytes(kept)


def test_exception_inside_with_releases(shoal_runtime):
    pub = shoal_runtime.publisher("err/raise")
    sub = shoal_runtime.subscriber("err/raise")
    with pytest.raises(RuntimeError):
        with pub.loan(1000) as loan:
            loan.payload[0] = 1
            raise RuntimeError("boom")
    assert loan.released
    pub.publish(b"abc")
    with pytest.raises(KeyError):
        with sub.take(timeout=1) as sample:
            raise KeyError("boom")
    assert sample.released
    for port in shoal_runtime.ports(pid=os.getpid()):
        assert port.held == 0, port
    assert all(p.in_use == 0 for p in shoal_runtime.pools())


def test_unsent_loan_is_released(shoal_runtime):
    pub = shoal_runtime.publisher("err/unsent")
    sub = shoal_runtime.subscriber("err/unsent")
    with pub.loan(100) as loan:
        loan.payload[:5] = b"never"
    assert loan.released
    with pytest.raises(shoal.Timeout):
        sub.take(timeout=0.05)
    assert all(p.in_use == 0 for p in shoal_runtime.pools())


def test_closed_port_raises_and_releases(shoal_runtime):
    pub = shoal_runtime.publisher("err/closed")
    loan = pub.loan(64)
    pub.close()
    assert loan.released
    with pytest.raises(shoal.ClosedError):
        pub.loan(64)
    assert all(p.in_use == 0 for p in shoal_runtime.pools())


@pytest.mark.shoal_allow_leaks  # releases by the garbage collector on purpose
def test_garbage_collected_chunk_is_released(shoal_daemon):
    with shoal_daemon.runtime("gc") as rt:
        pub = rt.publisher("err/gc")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pub.loan(64)   # dropped at once
            gc.collect()
        assert any(issubclass(w.category, ResourceWarning) for w in caught)
        assert all(p.in_use == 0 for p in rt.pools())
        rt2 = shoal.Runtime("gc2")   # from $SHOAL_DOMAIN / $SHOAL_RUNTIME_DIR
        rt2.publisher("err/gc2").loan(64)
        del rt2   # runtime, port and loan go together
        gc.collect()
        assert not [p for p in rt.ports() if p.process == "gc2"]


def test_bad_daemon_config_is_reported():
    with pytest.raises(shoal.DaemonError) as info:
        shoal.Daemon(limits={"servrs": 4})
    msg = str(info.value)
    assert "servrs" in msg and "exit code 1" in msg, msg
    with pytest.raises(ValueError):
        shoal.Daemon(pools={"12X": 3})


def test_second_daemon_on_a_domain_is_refused(shoal_daemon):
    with pytest.raises(shoal.DaemonError) as info:
        shoal.Daemon(domain=shoal_daemon.domain, runtime_dir=shoal_daemon.runtime_dir)
    assert "exit code 2" in str(info.value), str(info.value)
    assert shoal_daemon.running


def test_no_server(shoal_runtime):
    client = shoal_runtime.client("err/nobody")
    assert client.server_count == 0
    with pytest.raises((shoal.NoServerError, shoal.Timeout)):
        client.call(b"hello?", timeout=0.2)
    assert all(p.in_use == 0 for p in shoal_runtime.pools())
