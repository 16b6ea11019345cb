"""The C hot paths of shoal._payload: one port, several threads; the port lock."""

import os
import threading
import time

import pytest

import shoal


def _held(rt, name):
    return sum(p.held for p in rt.ports(pid=os.getpid()) if p.service == name)


def test_try_take_waits_for_the_port_lock_of_another_thread(shoal_runtime):
    pub = shoal_runtime.publisher("hot/lock")
    sub = shoal_runtime.subscriber("hot/lock")
    pub.publish(b"x")
    got = []
    holding, let_go = threading.Event(), threading.Event()

    def holder():
        with sub._lock:
            holding.set()
            let_go.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    assert holding.wait(5)
    taker = threading.Thread(target=lambda: got.append(sub.try_take()))
    taker.start()
    time.sleep(0.2)
    assert not got, "try_take() ran while another thread held the port lock"
    let_go.set()
    taker.join(5)
    t.join(5)
    assert len(got) == 1 and got[0] is not None
    with got[0] as s:
        assert bytes(s.payload) == b"x"


def test_port_lock_is_recursive_and_works_with_condition(shoal_runtime):
    sub = shoal_runtime.subscriber("hot/rlock")
    lock = sub._lock
    with lock:
        with lock:
            assert sub.try_take() is None
            assert lock._is_owned()
        assert lock.locked()
    assert not lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()
    assert lock.acquire(timeout=0.1)
    other = []
    t = threading.Thread(target=lambda: other.append(lock.acquire(timeout=0.1)))
    t.start()
    t.join(5)
    assert other == [False]
    lock.release()
    cond = threading.Condition(lock)
    flag = []

    def notifier():
        with cond:
            flag.append(1)
            cond.notify()

    with cond:
        threading.Thread(target=notifier).start()
        assert cond.wait_for(lambda: flag, timeout=5)


def test_threads_share_ports_without_losing_a_chunk(shoal_runtime):
    """Several threads loan, publish, take and release on the same two ports at once."""
    rt = shoal_runtime
    pub = rt.publisher("hot/mt", full_policy="reject")   # a full queue: retry, never drop
    sub = rt.subscriber("hot/mt", queue_capacity=256)
    per_thread, threads = 300, 4
    taken = []
    errors = []

    def producer(k):
        try:
            for i in range(per_thread):
                while True:
                    try:
                        with pub.loan(16) as loan:
                            loan.payload[0:8] = (k * per_thread + i).to_bytes(8, "little")
                            loan.send()
                        break
                    except (shoal.PoolExhaustedError, shoal.QueueFullError):
                        time.sleep(0.001)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def consumer():
        try:
            deadline = time.monotonic() + 60
            while len(taken) < per_thread * threads and time.monotonic() < deadline:
                s = sub.try_take()
                if s is None:
                    time.sleep(0)
                    continue
                with s:
                    taken.append(int.from_bytes(s.payload[0:8], "little"))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    workers = [threading.Thread(target=producer, args=(k,)) for k in range(threads)]
    workers += [threading.Thread(target=consumer) for _ in range(2)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(90)
    assert not errors, errors
    assert sorted(taken) == list(range(per_thread * threads))
    assert _held(rt, "hot/mt") == 0


def test_loan_argument_checks_go_through_the_layer(shoal_runtime):
    pub = shoal_runtime.publisher("hot/args")
    with pytest.raises(TypeError, match="size"):
        pub.loan(1.5)
    with pytest.raises(ValueError, match="size"):
        pub.loan(0)
    with pytest.raises(ValueError, match="size"):
        pub.loan(2 ** 70)
    with pub.loan(8) as loan:                          # plain int
        assert len(loan.payload) == 8
    import numpy as np
    with pub.loan(np.int64(12)) as loan:               # an __index__ int
        assert loan.size == 12
    assert _held(shoal_runtime, "hot/args") == 0


def test_closed_port_and_released_chunk_errors(shoal_runtime):
    rt = shoal_runtime
    with rt.server("hot/closed") as server, rt.client("hot/closed") as client:
        with client.loan(4) as req:
            req.payload[:] = b"ping"
            seq = req.send()
            with pytest.raises(shoal.ReleasedError, match="was sent"):
                req.send()
        request = server.try_take()
        with request:
            with request.loan_response(4) as resp:
                resp.payload[:] = b"pong"
                resp.send()
            request.release()
            with pytest.raises(shoal.ReleasedError):
                request.loan_response(4)
        with client.try_take() as response:
            assert response.sequence_id == seq
    with pytest.raises(shoal.ClosedError):
        client.loan(4)
    with pytest.raises(shoal.ClosedError):
        server.try_take()


def test_chunks_made_in_c_report_to_the_leak_hook(shoal_runtime):
    """Every chunk object, whichever C path made it, reaches shoal._api._chunk_hook
    (the pytest plugin's leak check), and setting the hook to None turns it off."""
    from shoal import _api, _payload

    seen = []
    previous = _api._chunk_hook
    _api._chunk_hook = lambda event, chunk: seen.append((event, chunk._what))
    try:
        assert _payload.get_chunk_hook() is not None
        pub = shoal_runtime.publisher("hot/hook")
        sub = shoal_runtime.subscriber("hot/hook")
        server = shoal_runtime.server("hot/hook-rr")
        client = shoal_runtime.client("hot/hook-rr")
        with pub.loan(8) as loan:                      # loan
            loan.send()
        with sub.try_take() as s:                      # try_take
            assert s.size == 8
        pub.publish(b"x")
        with sub.take(timeout=1):                      # take (polls with try_take)
            pass
        with client.loan(4) as req:
            req.send()
        with server.take(timeout=1) as request:
            with request.loan_response(4) as resp:     # loan_response
                resp.send()
        with client.take(timeout=1):
            pass
        with client.loan(4) as req:
            seq = req.send()
        with server.take(timeout=1) as request:
            request.respond(b"pong")
        with client.take(timeout=1) as r:
            assert r.sequence_id == seq
    finally:
        _api._chunk_hook = previous
    whats = [w for e, w in seen if e == "new"]
    assert whats.count("loan") == 6 and whats.count("sample") == 2, seen
    assert whats.count("request") == 2 and whats.count("response") == 2, seen
    if previous is None:
        assert _payload.get_chunk_hook() is None and _api._chunk_hook is None


@pytest.mark.shoal_allow_leaks   # the GC release is on purpose
def test_gc_release_reports_to_the_leak_hook(shoal_runtime):
    import gc
    import warnings
    from shoal import _api

    seen = []
    previous = _api._chunk_hook
    _api._chunk_hook = lambda event, chunk: seen.append(event)
    try:
        pub = shoal_runtime.publisher("hot/hook-gc")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            pub.loan(8)                        # dropped at once: the GC releases it
            gc.collect()
    finally:
        _api._chunk_hook = previous
    assert seen == ["new", "gc"], seen
    assert _held(shoal_runtime, "hot/hook-gc") == 0


def test_blocking_wait_send_lets_other_threads_run(shoal_runtime):
    """A WAIT-policy send on a full queue sleeps without the GIL (in slices) and goes
    on once another thread makes room."""
    pub = shoal_runtime.publisher("hot/wait", full_policy="wait", send_timeout=5.0)
    sub = shoal_runtime.subscriber("hot/wait", queue_capacity=1)
    pub.publish(b"1")                          # the queue is full now
    ticks = []
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    t = threading.Thread(target=spin)
    t.start()
    drainer = threading.Timer(0.3, lambda: sub.try_take().release())
    drainer.start()
    start = time.monotonic()
    try:
        pub.publish(b"2")                      # waits until the drainer made room
    finally:
        stop.set()
        t.join(5)
        drainer.join(5)
    assert 0.2 < time.monotonic() - start < 4.0
    assert len(ticks) > 20, "the GIL was held while the send waited"
    with sub.take(timeout=1) as s:
        assert bytes(s.payload) == b"2"


def test_take_arguments_of_the_c_method(shoal_runtime):
    pub = shoal_runtime.publisher("hot/take-args")
    sub = shoal_runtime.subscriber("hot/take-args")
    for timeout in (1, 1.0, float("inf"), 10**30, None):
        pub.publish(b"x")
        with sub.take(timeout) as s:               # positional
            assert bytes(s.payload) == b"x"
        pub.publish(b"y")
        with sub.take(timeout=timeout) as s:       # keyword
            assert bytes(s.payload) == b"y"
    with pytest.raises(shoal.Timeout, match="timeout=0: no wait"):
        sub.take(0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'timout'"):
        sub.take(timout=1)
    with pytest.raises(TypeError, match="one argument"):
        sub.take(1, 2)
    with pytest.raises(TypeError, match="timeout must be a number"):
        sub.take(b"1")
    assert "timeout" in str(__import__("inspect").signature(shoal.Subscriber.take))
