"""Blocking waits release the GIL; waitsets; asyncio."""

import asyncio
import threading
import time

import pytest

import shoal


def test_blocking_take_releases_the_gil(shoal_runtime):
    sub = shoal_runtime.subscriber("wait/gil")
    counter = [0]
    done = threading.Event()

    def spin():
        while not done.is_set():
            counter[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        # one C call of 0.5 s (below the layer's slicing, the call itself must let go)
        start = time.monotonic()
        rc, _ = shoal._api.backend.subscriber_take(sub._handle, 500_000_000)
        assert rc == 2   # SHOAL_ERR_TIMEOUT
        assert time.monotonic() - start >= 0.45
        during = counter[0]
    finally:
        done.set()
        t.join()
    assert during > 10000, "the Python thread did not run while take() waited: %d" % during


def test_take_wakes_up_when_data_arrives(shoal_runtime):
    pub = shoal_runtime.publisher("wait/wake")
    sub = shoal_runtime.subscriber("wait/wake")
    timer = threading.Timer(0.3, pub.publish, args=(b"late",))
    timer.start()
    start = time.monotonic()
    with sub.take(timeout=None) as sample:   # no bound: waits in slices
        assert bytes(sample.payload) == b"late"
    assert 0.25 < time.monotonic() - start < 3
    timer.join()


def test_waitset(shoal_runtime):
    pub = shoal_runtime.publisher("wait/ws-a")
    sub_a = shoal_runtime.subscriber("wait/ws-a")
    sub_b = shoal_runtime.subscriber("wait/ws-b")
    server = shoal_runtime.server("wait/ws-svc")
    client = shoal_runtime.client("wait/ws-svc")
    with shoal_runtime.waitset() as ws:
        for port in (sub_a, sub_b, server):
            ws.attach(port)
        with pytest.raises(shoal.Timeout):
            ws.wait(timeout=0.1)
        pub.publish(b"a")
        assert ws.wait(timeout=1) == [sub_a]
        with sub_a.take(timeout=0) as s:
            assert bytes(s.payload) == b"a"
        with client.loan(3) as req:
            req.payload[:] = b"req"
            req.send()
        assert ws.wait(timeout=1) == [server]
        with server.take(timeout=0) as r:
            r.respond(b"resp")
        with client.take(timeout=1) as resp:
            assert bytes(resp.payload) == b"resp"
        ws.detach(sub_b)
        with pytest.raises(ValueError):
            ws.detach(sub_b)


def test_take_async(shoal_runtime):
    pub = shoal_runtime.publisher("wait/async")
    sub = shoal_runtime.subscriber("wait/async")

    async def main():
        loop = asyncio.get_running_loop()
        loop.call_later(0.2, pub.publish, b"one")
        with await sub.take_async(timeout=5) as sample:
            assert bytes(sample.payload) == b"one"
        pub.publish(b"two")
        pub.publish(b"three")
        got = []
        for _ in range(2):
            with await sub.take_async(timeout=5) as sample:
                got.append(bytes(sample.payload))
        assert got == [b"two", b"three"]
        start = loop.time()
        with pytest.raises(shoal.Timeout):
            await sub.take_async(timeout=0.2)
        assert loop.time() - start >= 0.18
        # other tasks run while one waits
        ticks = []

        async def ticker():
            for _ in range(5):
                ticks.append(1)
                await asyncio.sleep(0.02)

        loop.call_later(0.3, pub.publish, b"four")
        results = await asyncio.gather(sub.take_async(timeout=5), ticker())
        with results[0] as sample:
            assert bytes(sample.payload) == b"four"
        assert len(ticks) == 5

    asyncio.run(main())


def test_server_and_client_async(shoal_runtime):
    server = shoal_runtime.server("wait/async-svc")
    client = shoal_runtime.client("wait/async-svc")

    async def serve_one():
        with await server.take_async(timeout=5) as request:
            request.respond(bytes(request.payload).upper())

    async def ask():
        with client.loan(5) as req:
            req.payload[:] = b"hello"
            seq = req.send()
        with await client.take_async(timeout=5) as resp:
            assert resp.sequence_id == seq
            return bytes(resp.payload)

    async def main():
        _, answer = await asyncio.gather(serve_one(), ask())
        assert answer == b"HELLO"

    asyncio.run(main())
