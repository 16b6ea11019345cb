"""Every wait is interruptible: Ctrl-C (SIGINT) raises KeyboardInterrupt within 100 ms."""

import signal
import threading
import time

import pytest

import shoal

LATENCY = 0.1


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
