"""Inputs are checked with errors that name the argument; messages speak Python."""

import os
import re

import pytest

import shoal

C_NAMES = re.compile(r"\bshoal_[a-z_]+\(\)")
DAEMON_TMP = re.compile(r"shoal-daemon-\w+")


def _assert_pythonic(msg):
    assert not C_NAMES.search(msg), msg
    assert not DAEMON_TMP.search(msg) and ".conf" not in msg, msg


# ---- names ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind,what", [("publisher", "topic"), ("subscriber", "topic"),
                                       ("client", "service"), ("server", "service")])
def test_port_names_must_be_str_without_nul(shoal_runtime, kind, what):
    make = getattr(shoal_runtime, kind)
    with pytest.raises(TypeError, match="%s must be a str, not bytes" % what):
        make(b"in/bytes")
    with pytest.raises(TypeError, match="%s must be a str, not int" % what):
        make(42)
    with pytest.raises(ValueError, match="NUL") as info:
        make("a\0b")             # was silently truncated to "a"
    assert what in str(info.value)
    assert not [p for p in shoal_runtime.ports(pid=os.getpid()) if p.service == "a"]


def test_runtime_names_must_be_str_without_nul(shoal_daemon):
    d = shoal_daemon
    with pytest.raises(TypeError, match="process name must be a str"):
        shoal.Runtime(b"proc", domain=d.domain, runtime_dir=d.runtime_dir)
    with pytest.raises(ValueError, match="NUL"):
        shoal.Runtime("pro\0c", domain=d.domain, runtime_dir=d.runtime_dir)
    with pytest.raises(TypeError, match="domain must be a str"):
        shoal.Runtime("proc", domain=d.domain.encode(), runtime_dir=d.runtime_dir)
    with pytest.raises(ValueError, match="runtime_dir .* NUL"):
        shoal.Runtime("proc", domain=d.domain, runtime_dir=d.runtime_dir + "\0x")
    with pytest.raises(TypeError, match="domain must be a str"):
        shoal.Daemon(domain=b"bytes")


def test_long_names_are_shortened_in_messages(shoal_runtime):
    name = "n" * 10000
    with pytest.raises(shoal.InvalidArgumentError) as info:
        shoal_runtime.publisher(name)
    msg = str(info.value)
    assert len(msg) < 300 and "10000 characters" in msg, msg
    with pytest.raises(ValueError) as info:
        shoal_runtime.subscriber(name + "\0")
    assert len(str(info.value)) < 300, str(info.value)


# ---- sizes ----------------------------------------------------------------------------

def test_sizes_must_be_ints_in_range(shoal_runtime):
    with shoal_runtime.publisher("in/size") as pub:
        for bad in (1.5, "8", b"8", None, True):
            with pytest.raises(TypeError, match="size must be an int"):
                pub.loan(bad)                     # 1.5 loaned 1 byte, "8" 8 bytes
        for bad in (0, -1, 2 ** 64, 2 ** 70, 10 ** 5000):
            with pytest.raises(ValueError, match="size must be 1..2\\*\\*64-1") as info:
                pub.loan(bad)
            assert len(str(info.value)) < 200
        with pub.loan(16) as loan:
            with pytest.raises(TypeError, match="size must be an int"):
                loan.set_size(2.0)
            with pytest.raises(ValueError, match="size must be 0.."):
                loan.set_size(-1)
            loan.set_size(4)
    assert all(p.held == 0 for p in shoal_runtime.ports(pid=os.getpid()))


def test_numpy_ints_are_sizes():
    np = pytest.importorskip("numpy")
    with shoal.Daemon(pools={64: 8}) as d, d.runtime("in-np") as rt:
        with rt.publisher("in/np").loan(np.int64(8)) as loan:
            assert loan.size == 8


def test_response_sizes_and_port_options(shoal_runtime):
    rt = shoal_runtime
    with rt.server("in/svc") as server, rt.client("in/svc") as client:
        client.loan(4).send()
        with server.take(timeout=1) as request:
            with pytest.raises(TypeError, match="size must be an int"):
                request.loan_response(4.0)
            with pytest.raises(ValueError, match="size must be 1.."):
                request.loan_response(0)
    with pytest.raises(ValueError, match="queue_capacity must be 0..2\\*\\*32-1"):
        rt.subscriber("in/opt", queue_capacity=-1)
    with pytest.raises(TypeError, match="history must be an int"):
        rt.publisher("in/opt", history="2")
    with pytest.raises(ValueError, match="full_policy 'sometimes'"):
        rt.publisher("in/opt", full_policy="sometimes")
    with pytest.raises(TypeError, match="full_policy must be"):
        rt.publisher("in/opt", full_policy=1.5)
    with pytest.raises(TypeError, match=r"pools\[64\] \(the chunk count\) must be an int"):
        shoal.Daemon(pools={64: 2.5})
    with pytest.raises(TypeError, match=r"limits\['servers'\] must be an int"):
        shoal.Daemon(limits={"servers": "4"})


def test_ignore_own_process(shoal_runtime):
    """Subscriber/client option ignore_own_process (C options version 2): this process's
    own samples and servers are skipped; a plain port sees them."""
    rt = shoal_runtime
    with pytest.raises(TypeError, match="ignore_own_process must be True or False"):
        rt.subscriber("in/own", ignore_own_process=1)
    with rt.publisher("in/own") as pub, \
            rt.subscriber("in/own", ignore_own_process=True) as deaf, \
            rt.subscriber("in/own") as plain:
        pub.publish(b"mine")
        with plain.take(timeout=1) as sample:
            assert bytes(sample.payload) == b"mine"
        assert deaf.try_take() is None
    with rt.server("in/own-svc"), \
            rt.client("in/own-svc", ignore_own_process=True) as deaf, \
            rt.client("in/own-svc") as plain:
        assert plain.server_count == 1
        assert deaf.server_count == 0
        with pytest.raises(shoal.NoServerError, match="ignore_own_process"):
            deaf.call(b"x", timeout=1)


# ---- timeouts ---------------------------------------------------------------------------

def test_negative_timeouts_are_value_errors(shoal_runtime, shoal_daemon):
    rt = shoal_runtime
    sub = rt.subscriber("in/tmo")
    client = rt.client("in/tmo-svc")
    for bad in (-1, -0.001, float("-inf")):
        with pytest.raises(ValueError, match="timeout must be >= 0 seconds"):
            sub.take(timeout=bad)
        with pytest.raises(ValueError, match="timeout must be >= 0"):
            client.call(b"x", timeout=bad)
        with rt.waitset() as ws:
            ws.attach(sub)
            with pytest.raises(ValueError, match="timeout must be >= 0"):
                ws.wait(timeout=bad)
        with pytest.raises(ValueError, match="send_timeout must be >= 0"):
            rt.publisher("in/tmo", full_policy="wait", send_timeout=bad)
        with pytest.raises(ValueError, match="connect_timeout must be >= 0"):
            shoal.Runtime("x", domain=shoal_daemon.domain, connect_timeout=bad)
    with pytest.raises(ValueError, match="NaN"):
        sub.take(timeout=float("nan"))
    with pytest.raises(TypeError, match="timeout must be a number of seconds"):
        sub.take(timeout="1")
    assert all(p.held == 0 for p in rt.ports(pid=os.getpid()))


def test_timeout_errors_report_the_callers_timeout(shoal_runtime):
    rt = shoal_runtime
    sub = rt.subscriber("in/quiet")
    with pytest.raises(shoal.Timeout) as info:
        sub.take(timeout=0.3)          # said "within 99821831 ns", the last internal slice
    msg = str(info.value)
    assert "0.3 s" in msg and " ns" not in msg, msg
    assert info.value.code == 2 and "0.3 s" in info.value.detail
    with pytest.raises(shoal.Timeout, match="timeout=0: no wait"):
        sub.take(timeout=0)
    with rt.waitset() as ws:
        ws.attach(sub)
        with pytest.raises(shoal.Timeout, match="within 0.25 s"):
            ws.wait(timeout=0.25)
    with rt.server("in/mute") as server, rt.client("in/mute") as client:
        assert server  # offers the service, never answers
        with pytest.raises(shoal.Timeout) as info:
            client.call(b"anyone?", timeout=0.2)
        msg = str(info.value)
        assert "0.2 s" in msg and " ns" not in msg and "client 'in/mute'" in msg, msg
        with server.take(timeout=1):
            pass


def test_take_async_timeout_reports_the_callers_timeout(shoal_runtime):
    import asyncio

    sub = shoal_runtime.subscriber("in/async")

    async def main():
        with pytest.raises(shoal.Timeout, match="within 0.15 s"):
            await sub.take_async(timeout=0.15)
        with pytest.raises(ValueError):
            await sub.take_async(timeout=-1)

    asyncio.run(main())


# ---- messages speak Python ------------------------------------------------------------

def test_limit_messages_speak_python():
    with shoal.Daemon(pools={64: 4}, limits={"chunks_per_port": 2}) as d, d.runtime("py") as rt:
        pub = rt.publisher("in/held")
        loans = [pub.loan(8), pub.loan(8)]
        with pytest.raises(shoal.HeldLimitError) as info:
            pub.loan(8)
        msg = str(info.value)
        _assert_pythonic(msg)
        assert "release()" in msg and "`with`" in msg and "limits.chunks_per_port" in msg, msg
        assert "shoal.Daemon" in msg, msg
        for loan in loans:
            loan.release()
        with pytest.raises(shoal.ChunkTooLargeError) as info:
            pub.loan(100)
        msg = str(info.value)
        _assert_pythonic(msg)
        assert "shoal.Daemon(pools=" in msg and "'1M': 2" in msg, msg


def test_held_limit_names_chunks_kept_by_exports():
    np = pytest.importorskip("numpy")
    with shoal.Daemon(pools={64: 8}, limits={"chunks_per_port": 1}) as d, d.runtime("py") as rt:
        pub = rt.publisher("in/kept")
        with pub.loan(8) as loan:
            arr = loan.array(np.uint8)
        with pytest.raises(shoal.HeldLimitError) as info:
            pub.loan(8)
        assert "1 chunk(s) of publisher 'in/kept' were released but still wait" \
            in str(info.value), str(info.value)
        del arr
        pub.loan(8).release()


def test_daemon_config_errors_speak_python():
    with pytest.raises(shoal.DaemonError) as info:
        shoal.Daemon(pools={64: 8}, limits={"servrs": 4})
    msg = str(info.value)
    _assert_pythonic(msg)
    assert "shoal.Daemon(limits=...)" in msg and "servrs = 4" in msg, msg
    assert "did you mean 'servers'" in msg, msg


def test_c_function_names_are_translated():
    # no Python call reaches these C messages today; the translation covers them anyway
    text = shoal._api._pythonic(
        "a server sends responses loaned with shoal_server_loan_response()")
    assert text == "a server sends responses loaned with request.loan_response()"
