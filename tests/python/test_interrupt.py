"""Every wait is interruptible: Ctrl-C (SIGINT) raises KeyboardInterrupt within 100 ms."""

import signal
import threading
import time

import pytest

import shoal

# The bound of the issue: KeyboardInterrupt within 100 ms of SIGINT. Interruption is
# immediate by design (a signal cuts the C wait short), measured as a median below;
# single measurements get a generous bound, as a loaded machine may not schedule the
# process for a while.
SPEC = 0.1
LATENCY = 1.0


def _interrupted(wait, delay=0.3):
    """Run wait() on the main thread, SIGINT it after `delay` s from a timer thread;
    return how long after the signal KeyboardInterrupt was raised."""
    assert threading.current_thread() is threading.main_thread()
    main = threading.main_thread().ident
    sent = []

    def fire():
        sent.append(time.monotonic())
        signal.pthread_kill(main, signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(delay, fire)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            wait()
        return time.monotonic() - sent[0]
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGINT, previous)


def test_take_without_bound_is_interruptible(shoal_runtime):
    sub = shoal_runtime.subscriber("int/take")
    assert _interrupted(lambda: sub.take(timeout=None)) < LATENCY
    assert _interrupted(lambda: sub.take(timeout=60)) < LATENCY


def test_call_is_interruptible(shoal_runtime):
    rt = shoal_runtime
    with rt.server("int/call") as server, rt.client("int/call") as client:
        # a server that never answers: the call used to wait in one C call
        assert _interrupted(lambda: client.call(b"hello?", timeout=None)) < LATENCY
        assert _interrupted(lambda: client.call(b"again?", timeout=60)) < LATENCY
        for _ in range(2):
            with server.take(timeout=1):
                pass


def test_waitset_wait_is_interruptible(shoal_runtime):
    sub = shoal_runtime.subscriber("int/ws")
    with shoal_runtime.waitset() as ws:
        ws.attach(sub)
        assert _interrupted(lambda: ws.wait(timeout=None)) < LATENCY


def test_call_releases_and_counts_stale_responses(shoal_runtime):
    rt = shoal_runtime
    with rt.server("int/stale") as server, rt.client("int/stale") as client:
        with client.loan(3) as req:        # an earlier request, never taken by its caller
            req.payload[:] = b"old"
            req.send()
        with server.take(timeout=1) as request:
            request.respond(b"old answer")

        def answer():
            with server.take(timeout=5) as request:
                request.respond(bytes(request.payload).upper())

        t = threading.Thread(target=answer)
        t.start()
        assert client.call(b"new", timeout=5) == b"NEW"
        t.join()
        assert client.stale_responses == 1
        assert client.try_take() is None   # the stale one was released, not left queued


def test_call_timeout_then_late_response_is_stale(shoal_runtime):
    rt = shoal_runtime
    with rt.server("int/late") as server, rt.client("int/late") as client:
        with pytest.raises(shoal.Timeout, match="no response to request"):
            client.call(b"slow", timeout=0.1)
        with server.take(timeout=1) as request:
            request.respond(b"too late")
        def answer():
            with server.take(timeout=5) as request:
                request.respond(b"ok")

        t = threading.Thread(target=answer)
        t.start()
        assert client.call(b"next", timeout=5) == b"ok"
        t.join()
        assert client.stale_responses == 1


# ---- WAIT-policy sends, usability afterwards, threads (issue 11) ----------------------

def _in_use(rt):
    return sum(p.in_use for p in rt.pools())


def test_wait_policy_publish_to_a_full_queue_is_interruptible(shoal_runtime):
    rt = shoal_runtime
    base = _in_use(rt)
    pub = rt.publisher("int/full", full_policy="wait", send_timeout=60)
    fast = rt.subscriber("int/full", queue_capacity=1)
    slow = rt.subscriber("int/full", queue_capacity=1)
    pub.publish(b"1")              # both queues hold one now
    with fast.take(timeout=1):
        pass
    # one C call of up to 60 s before: now cut within the latency bound
    assert _interrupted(lambda: pub.publish(b"2")) < LATENCY
    # the interrupted sample was given back, not lost: only queued ones are in use
    with fast.take(timeout=1) as s:    # fast was served before the wait on slow
        assert bytes(s.payload) == b"2"
    with slow.take(timeout=1) as s:
        assert bytes(s.payload) == b"1"
    assert slow.try_take() is None
    # the publisher still works, and nothing leaked
    pub.publish(b"3")
    for sub in (fast, slow):
        with sub.take(timeout=1) as s:
            assert bytes(s.payload) == b"3"
    assert _in_use(rt) == base


def test_wait_policy_request_and_response_are_interruptible(shoal_runtime):
    rt = shoal_runtime
    base = _in_use(rt)
    server = rt.server("int/full-rr", queue_capacity=1, full_policy="wait", send_timeout=60)
    client = rt.client("int/full-rr", queue_capacity=1, full_policy="wait", send_timeout=60)
    with client.loan(1) as req:
        req.payload[0] = 1
        req.send()                         # the server's queue (1) is full now
    with client.loan(1) as req:
        req.payload[0] = 2
        assert _interrupted(req.send) < LATENCY
        assert req.released                # given back to its pool on the way out
    with server.take(timeout=1) as r1:
        assert r1.payload[0] == 1
        assert server.try_take() is None   # the interrupted request was not sent
        r1.respond(b"a")                   # the client's queue (1) is full now
        with client.loan(1) as req:        # a second request, to answer below
            req.send()
        with server.take(timeout=1) as r2:
            assert _interrupted(lambda: r2.respond(b"b")) < LATENCY
    with client.take(timeout=1) as resp:
        assert bytes(resp.payload) == b"a"
    assert client.try_take() is None
    # both ports still work
    with client.loan(1) as req:
        req.send()

    def answer():
        with server.take(timeout=5) as r:
            r.respond(b"ok")
    t = threading.Thread(target=answer)
    t.start()
    with client.take(timeout=5) as resp:
        assert bytes(resp.payload) == b"ok"
    t.join()
    assert _in_use(rt) == base


def test_ports_stay_usable_after_interrupted_waits(shoal_runtime):
    rt = shoal_runtime
    base = _in_use(rt)
    pub = rt.publisher("int/usable")
    sub = rt.subscriber("int/usable")
    for _ in range(3):
        assert _interrupted(lambda: sub.take(timeout=None), delay=0.1) < LATENCY
    pub.publish(b"after")
    with sub.take(timeout=1) as s:
        assert bytes(s.payload) == b"after"
    with rt.server("int/usable-svc") as server, rt.client("int/usable-svc") as client:
        assert _interrupted(lambda: client.call(b"q", timeout=None), delay=0.1) < LATENCY
        with server.take(timeout=1) as r:
            r.respond(b"late")

        def answer():
            with server.take(timeout=5) as r:
                r.respond(b"fresh")
        t = threading.Thread(target=answer)
        t.start()
        assert client.call(b"q2", timeout=5) == b"fresh"
        t.join()
        assert client.stale_responses == 1
    assert _in_use(rt) == base


def test_release_and_loan_do_not_wait_for_a_take_on_another_thread(shoal_runtime):
    """take(timeout=5) sleeps without the port's lock: another thread's release and loan
    of the same port go ahead at once (they waited up to a slice, 50 ms, before)."""
    rt = shoal_runtime
    server = rt.server("int/threads")
    client = rt.client("int/threads")
    held = [client.loan(8) for _ in range(20)]
    started = threading.Event()
    outcome = {}

    def waiter():
        started.set()
        try:
            with client.take(timeout=5) as resp:
                outcome["got"] = bytes(resp.payload)
        except shoal.Timeout as e:
            outcome["error"] = e

    t = threading.Thread(target=waiter)
    t.start()
    started.wait()
    time.sleep(0.2)   # asleep in take()
    times = []
    for loan in held:
        t0 = time.perf_counter()
        loan.release()
        with client.loan(8):
            pass
        times.append(time.perf_counter() - t0)
    assert t.is_alive(), "take(timeout=5) ended early"
    times.sort()
    median = times[len(times) // 2]
    print("release + loan + release while another thread is in take(timeout=5): "
          "median %.1f us, max %.1f us" % (median * 1e6, times[-1] * 1e6))
    assert median < 0.01, "median %.1f ms" % (median * 1e3)
    # the waiting take still gets what arrives
    with client.loan(1) as req:
        req.send()
    with server.take(timeout=1) as r:
        r.respond(b"x")
    t.join(6)
    assert not t.is_alive()
    assert outcome == {"got": b"x"}, outcome


def test_close_from_another_thread_ends_a_take(shoal_runtime):
    sub = shoal_runtime.subscriber("int/close")
    outcome = {}

    def waiter():
        try:
            sub.take(timeout=10)
        except Exception as e:  # noqa: BLE001 - the test inspects it
            outcome["error"] = e

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    sub.close()
    t.join(2)
    assert not t.is_alive()
    assert time.monotonic() - t0 < 1
    assert isinstance(outcome.get("error"), shoal.ClosedError), outcome


def test_median_interrupt_latency_is_within_100_ms(shoal_runtime):
    rt = shoal_runtime
    sub = rt.subscriber("int/median")
    server = rt.server("int/median-svc")
    client = rt.client("int/median-svc")
    pub = rt.publisher("int/median-full", full_policy="wait", send_timeout=60)
    full = rt.subscriber("int/median-full", queue_capacity=1)
    pub.publish(b"x")
    waits = {"take": lambda: sub.take(timeout=None),
             "call": lambda: client.call(b"q", timeout=None),
             "WAIT publish": lambda: pub.publish(b"y")}
    for name, wait in waits.items():
        times = sorted(_interrupted(wait, delay=0.05) for _ in range(7))
        print("%s: KeyboardInterrupt %.2f ms after SIGINT (median of 7), max %.2f ms"
              % (name, times[3] * 1e3, times[-1] * 1e3))
        assert times[3] < SPEC, (name, times)
    with full.take(timeout=1):
        pass
    while True:
        request = server.try_take()
        if request is None:
            break
        request.release()
