"""asyncio at scale (issue 11): one waitset per runtime and event loop, 1,000 ports
awaited at once, call_async, async for, idle CPU, the daemon's death."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

import shoal
from shoal_workers import child_env

PORTS = 1000

# Publishes one message to each of N topics "<prefix>/<i>", each carrying its index.
PUBLISHER = r"""
import sys, shoal
domain, runtime_dir, prefix, n = sys.argv[1], sys.argv[2] or None, sys.argv[3], int(sys.argv[4])
with shoal.Runtime("async-pub", domain=domain, runtime_dir=runtime_dir) as rt:
    pubs = [rt.publisher("%s/%d" % (prefix, i)) for i in range(n)]
    sys.stdout.write("ready\n"); sys.stdout.flush()
    sys.stdin.readline()                      # the parent awaits every port now
    for i, pub in enumerate(pubs):
        pub.publish(i.to_bytes(4, "little"))
    sys.stdout.write("done\n"); sys.stdout.flush()
    sys.stdin.readline()
"""


@pytest.fixture(scope="module")
def big_daemon():
    """A daemon with room for 1,000 subscribers and their samples."""
    daemon = shoal.Daemon(domain="async-" + uuid.uuid4().hex[:8], pools={64: 4096},
                          limits={"subscribers": 1100, "publishers": 1100})
    try:
        yield daemon
    finally:
        daemon.stop()


def _runtime(daemon, name):
    return shoal.Runtime(name, domain=daemon.domain, runtime_dir=daemon.runtime_dir)


def _waitsets_in_use(rt):
    return sum(1 for ws in rt._waitsets if ws._handle is not None)


def test_take_async_on_a_thousand_ports_from_another_process(big_daemon):
    prefix = "many-" + uuid.uuid4().hex[:6]
    with _runtime(big_daemon, "async-many") as rt:
        subs = [rt.subscriber("%s/%d" % (prefix, i)) for i in range(PORTS)]
        child = subprocess.Popen(
            [sys.executable, "-c", PUBLISHER, big_daemon.domain, big_daemon.runtime_dir or "",
             prefix, str(PORTS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env=child_env(), text=True)
        try:
            assert child.stdout.readline().strip() == "ready"

            async def one(i, sub):
                with await sub.take_async(timeout=60) as sample:
                    return i, int.from_bytes(bytes(sample.payload), "little")

            async def main():
                tasks = [asyncio.ensure_future(one(i, s)) for i, s in enumerate(subs)]
                await asyncio.sleep(0.5)          # all 1,000 pending before anything is sent
                assert not any(t.done() for t in tasks)
                # one waitset for the loop, no thread per port
                assert _waitsets_in_use(rt) == 1
                child.stdin.write("go\n")
                child.stdin.flush()
                t0 = time.monotonic()
                results = await asyncio.gather(*tasks)
                return results, time.monotonic() - t0

            threads_before = threading.active_count()
            results, took = asyncio.run(main())
            print("1,000 take_async from another process: all received in %.3f s" % took)
            assert threading.active_count() <= threads_before + 1
            assert sorted(results) == [(i, i) for i in range(PORTS)]
            assert child.stdout.readline().strip() == "done"
            assert sum(p.held for p in rt.ports(pid=os.getpid())) == 0
        finally:
            child.stdin.write("end\n")
            child.stdin.flush()
            assert child.wait(30) == 0
        for s in subs:
            s.close()


def test_idle_cpu_with_a_thousand_ports_awaited(big_daemon):
    with _runtime(big_daemon, "async-idle") as rt:
        subs = [rt.subscriber("idle-%s/%d" % (uuid.uuid4().hex[:4], i)) for i in range(PORTS)]

        async def main():
            tasks = [asyncio.ensure_future(s.take_async()) for s in subs]
            await asyncio.sleep(0.3)
            cpu0, wall0 = time.process_time(), time.monotonic()
            await asyncio.sleep(2.0)
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return cpu / wall

        share = asyncio.run(main())
        print("idle with 1,000 ports awaited: %.2f%% of a core (process CPU time)" % (share * 100))
        assert share < 0.05


def test_many_event_loops_one_after_another_do_not_exhaust_waitsets(shoal_runtime):
    """65 asyncio.run() and 65 ports: the old per-port waitsets failed at the 65th port
    with limits.waitsets_per_process about waitsets the user never created."""
    pub = shoal_runtime.publisher("async/loops")
    sub = shoal_runtime.subscriber("async/loops")
    ports = [shoal_runtime.subscriber("async/loops-%d" % i) for i in range(70)]

    async def main(i):
        pub.publish(bytes([i]))
        with await sub.take_async(timeout=5) as s:
            assert s.payload[0] == i
        with pytest.raises(shoal.Timeout):
            await ports[i].take_async(timeout=0.01)

    for i in range(70):
        asyncio.run(main(i))
    assert _waitsets_in_use(shoal_runtime) <= 2   # loops that ended give theirs back


def test_waitset_limit_error_names_the_real_limit():
    with shoal.Daemon(domain="wslim-" + uuid.uuid4().hex[:8], pools={64: 16},
                      limits={"waitsets_per_process": 1}) as daemon:
        with _runtime(daemon, "wslim") as rt:
            ws = rt.waitset()                 # the user's own: the limit is reached
            sub = rt.subscriber("wslim")

            async def main():
                await sub.take_async(timeout=0.1)

            with pytest.raises(shoal.Error) as info:
                asyncio.run(main())
            text = str(info.value)
            assert "asyncio" in text and "limits.waitsets_per_process" in text, text
            ws.close()
            with pytest.raises(shoal.Timeout):
                asyncio.run(main())           # with room, it works


def test_call_async(shoal_runtime):
    rt = shoal_runtime
    server = rt.server("async/call")
    client = rt.client("async/call")

    async def serve(n):
        for _ in range(n):
            with await server.take_async(timeout=5) as request:
                request.respond(bytes(request.payload).upper())

    async def main():
        # a stale response first: an earlier request whose answer nobody took
        with client.loan(3) as req:
            req.payload[:] = b"old"
            req.send()
        with await server.take_async(timeout=5) as r:
            r.respond(b"stale")
        serving = asyncio.ensure_future(serve(3))
        answers = [await client.call_async(b"a%d" % i, timeout=5) for i in range(3)]
        await serving
        with pytest.raises(shoal.Timeout, match="no response to request"):
            await client.call_async(b"nobody answers", timeout=0.2)
        return answers

    assert asyncio.run(main()) == [b"A0", b"A1", b"A2"]
    assert client.stale_responses == 1
    with server.take(timeout=1):        # the unanswered request
        pass
    assert client.try_take() is None


def test_async_for_over_a_subscriber(shoal_runtime):
    rt = shoal_runtime
    pub = rt.publisher("async/for")
    sub = rt.subscriber("async/for")

    async def produce():
        for i in range(5):
            await asyncio.sleep(0.01)
            pub.publish(bytes([i]))

    async def main():
        producing = asyncio.ensure_future(produce())
        got = []
        async for sample in sub:
            assert isinstance(sample, shoal.Sample)
            got.append(sample.payload[0])
            # the previous sample was released when this one was taken
            assert rt.ports(pid=os.getpid(), kind=shoal.PortKind.SUBSCRIBER)[0].held <= 1
            if len(got) == 5:
                break
        await producing
        return got

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]
    # the last one was released when the loop ended
    assert all(p.held == 0 for p in rt.ports(pid=os.getpid()) if p.service == "async/for")

    async def with_block():
        pub.publish(b"w")
        async for sample in sub:
            with sample:                  # releasing it in the body is fine too
                assert bytes(sample.payload) == b"w"
            return

    asyncio.run(with_block())


def test_closing_a_port_fails_its_awaiting_coroutine(shoal_runtime):
    sub = shoal_runtime.subscriber("async/closed")

    async def main():
        task = asyncio.ensure_future(sub.take_async())
        await asyncio.sleep(0.05)
        sub.close()
        with pytest.raises(shoal.ClosedError):
            await task

    asyncio.run(main())


@pytest.mark.parametrize("what", ["take_async", "call_async"])
def test_daemon_sigkill_fails_pending_async_waits(what):
    daemon = shoal.Daemon(domain="adeath-" + uuid.uuid4().hex[:8], pools={64: 16})
    try:
        rt = _runtime(daemon, "async-victim")
        sub = rt.subscriber("adeath")
        server = rt.server("adeath")   # a server that never answers (kept alive)
        client = rt.client("adeath")

        async def main():
            loop = asyncio.get_running_loop()
            if what == "take_async":
                task = asyncio.ensure_future(sub.take_async())
            else:
                task = asyncio.ensure_future(client.call_async(b"?"))
            await asyncio.sleep(0.2)
            assert not task.done()
            killed = loop.time()
            os.kill(daemon.pid, signal.SIGKILL)
            with pytest.raises(shoal.DaemonUnavailableError):
                await asyncio.wait_for(task, 5)
            return loop.time() - killed

        took = asyncio.run(main())
        print("%s failed %.1f ms after SIGKILL of shoald" % (what, took * 1e3))
        assert took < 1.0
        with pytest.raises(shoal.DaemonUnavailableError):
            asyncio.run(sub.take_async(timeout=1))
        rt.close()
    finally:
        daemon.stop()
