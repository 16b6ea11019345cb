"""The program of the issue, as a test, plus its cross-process variants."""

import multiprocessing
import os

import pytest

import shoal
import shoal_workers

SPAWN = multiprocessing.get_context("spawn")


def test_issue_sample_program():
    domain = "demo-%d" % os.getpid()
    with shoal.Daemon(domain=domain, pools={64: 1024, "1M": 8},
                      limits={"servers": 1024}) as daemon:   # starts a real shoald
        with shoal.Runtime("app", domain=domain) as rt:
            server = rt.server("calc/add")
            client = rt.client("calc/add")
            with client.loan(8) as req:            # req.payload is a writable memoryview
                req.payload[:8] = b"12345678"
                seq = req.send()
            with server.take(timeout=1.0) as request:
                with request.loan_response(8) as resp:
                    resp.payload[:] = request.payload
                    resp.send()
            with client.take(timeout=1.0) as response:
                assert response.sequence_id == seq
                data = bytes(response.payload)
            assert data == b"12345678"
            with pytest.raises(shoal.ReleasedError):
                response.payload  # noqa: B018 - released at the end of its block

            # client.call copies; it needs a server answering meanwhile
            ctx = SPAWN
            ready = ctx.Event()
            echo = ctx.Process(target=shoal_workers.echo_server,
                               args=(domain, daemon.runtime_dir, "calc/echo", 1, ready))
            echo.start()
            try:
                assert ready.wait(30)
                echo_client = rt.client("calc/echo")
                reply = echo_client.call(b"12345678", timeout=10.0)
                assert reply == b"87654321"
            finally:
                echo.join(30)
            assert echo.exitcode == 0

            pub = rt.publisher("radar/front")
            sub = rt.subscriber("radar/front")
            pub.publish(b"x" * 100)
            with sub.take(timeout=1.0) as sample:
                assert bytes(sample.payload) == b"x" * 100
            assert all(p.in_use == 0 for p in rt.pools())
    assert daemon.returncode == 0


def test_request_response_across_processes(shoal_daemon, shoal_runtime):
    ready = SPAWN.Event()
    count = 20
    proc = SPAWN.Process(target=shoal_workers.echo_server,
                         args=(shoal_daemon.domain, shoal_daemon.runtime_dir, "xp/echo", count,
                               ready))
    proc.start()
    try:
        assert ready.wait(30)
        with shoal_runtime.client("xp/echo") as client:
            for i in range(count):
                payload = os.urandom(1 + i * 997)
                with client.loan(len(payload)) as req:
                    req.payload[:] = payload
                    seq = req.send()
                with client.take(timeout=10) as resp:
                    assert resp.sequence_id == seq
                    assert bytes(resp.payload) == payload[::-1]
    finally:
        proc.join(30)
    assert proc.exitcode == 0


def test_publish_subscribe_across_processes(shoal_daemon, shoal_runtime):
    ready = SPAWN.Event()
    results = SPAWN.Queue()
    count = 30
    proc = SPAWN.Process(target=shoal_workers.subscriber_sums,
                         args=(shoal_daemon.domain, shoal_daemon.runtime_dir, "xp/topic", count,
                               ready, results))
    proc.start()
    try:
        assert ready.wait(30)
        expected = []
        with shoal_runtime.publisher("xp/topic", full_policy="wait", send_timeout=10) as pub:
            assert pub.subscriber_count == 1
            for i in range(count):
                size = 1 + i * 4096
                with pub.loan(size) as sample:
                    sample.payload[:] = bytes([i % 256]) * size
                    sample.send()
                expected.append((size, (i % 256) * size))
        got = [results.get(timeout=30) for _ in range(count)]
    finally:
        proc.join(30)
    assert proc.exitcode == 0
    assert [(n, s) for _, n, s in got] == expected
    seqs = [q for q, _, _ in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == count


def test_crashed_holder_returns_its_chunks(shoal_daemon, shoal_runtime):
    subscribed, taken = SPAWN.Event(), SPAWN.Event()
    proc = SPAWN.Process(target=shoal_workers.hold_and_wait,
                         args=(shoal_daemon.domain, shoal_daemon.runtime_dir, "xp/crash",
                               subscribed, taken))
    proc.start()
    try:
        assert subscribed.wait(30)
        with shoal_runtime.publisher("xp/crash") as pub:
            pub.publish(b"held by a process that will be killed" * 1000)
            assert taken.wait(30)
            pool = _pool_of(shoal_runtime, 38000)
            assert pool.in_use == 1
    finally:
        proc.kill()
        proc.join(30)
    _wait_until(lambda: _pool_of(shoal_runtime, 38000).in_use == 0)


def _pool_of(rt, size):
    return min((p for p in rt.pools() if p.chunk_size >= size), key=lambda p: p.chunk_size)


def _wait_until(cond, timeout=10.0):
    import time

    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in %gs" % timeout
        time.sleep(0.02)


def test_try_take_polls_without_raising(shoal_runtime):
    """try_take: None when nothing is queued, a chunk (to use as `with`) otherwise."""
    rt = shoal_runtime
    with rt.server("poll/svc") as server, rt.client("poll/svc") as client, \
            rt.publisher("poll/topic") as pub, rt.subscriber("poll/topic") as sub:
        assert server.try_take() is None
        assert client.try_take() is None
        assert sub.try_take() is None
        with client.loan(4) as req:
            req.payload[:] = b"ping"
            seq = req.send()
        request = server.try_take()
        assert request is not None
        with request:
            assert bytes(request.payload) == b"ping"
            with request.loan_response(4) as resp:
                resp.payload[:] = b"pong"
                resp.send()
        assert server.try_take() is None
        response = client.try_take()
        with response:
            assert response.sequence_id == seq and bytes(response.payload) == b"pong"
        assert response.released
        pub.publish(b"x")
        sample = sub.try_take()
        with sample:
            assert bytes(sample.payload) == b"x"
        assert sub.try_take() is None


def test_set_size_shrinks_what_the_receiver_sees(shoal_runtime):
    rt = shoal_runtime
    with rt.publisher("size/topic") as pub, rt.subscriber("size/topic") as sub:
        with pub.loan(32) as loan:
            loan.payload[:5] = b"hello"
            loan.set_size(5)
            assert len(loan.payload) == 5
            with pytest.raises(shoal.Error):
                loan.set_size(64)      # never grows
            loan.send()
        with sub.take(timeout=1.0) as sample:
            assert bytes(sample.payload) == b"hello"
