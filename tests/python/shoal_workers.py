"""Code run in other processes by the tests (multiprocessing, spawn start method).

Every worker connects with shoal.Runtime() to the domain named in its arguments.
"""

import os
import threading

import shoal

# Payload markers of the seed scenario (first byte of a request): the server answers
# SLOW requests after `slow_delay` seconds and MEDIUM ones after twice that.
NORMAL, SLOW, MEDIUM = 0, 1, 2


def answer_byte(b):
    return (b * 7 + 3) % 256


def serve_threads(domain, runtime_dir, service, nthreads, ready, stop, slow_delay):
    """nthreads server threads, each with its own Server port, answering until `stop`.

    A request is a payload of any size; the response has the same size, its first byte
    derived from the request's first byte and its last byte from the request's last
    byte. Only the first and last bytes are touched, so 1 GB chunks cost two pages.
    Requests marked SLOW / MEDIUM are answered after 1x / 2x `slow_delay` seconds.
    """
    with shoal.Runtime("servers-%d" % os.getpid(), domain=domain, runtime_dir=runtime_dir) as rt:
        servers = [rt.server(service) for _ in range(nthreads)]
        errors = []

        def loop(server):
            try:
                while not stop.is_set():
                    try:
                        request = server.take(timeout=0.1)
                    except shoal.Timeout:
                        continue
                    with request:
                        first, last = request.payload[0], request.payload[-1]
                        if first in (SLOW, MEDIUM):
                            stop.wait(slow_delay * first)
                        try:
                            with request.loan_response(request.size) as resp:
                                resp.payload[0] = answer_byte(first)
                                resp.payload[-1] = answer_byte(last)
                                resp.send()
                        except shoal.ClientGoneError:
                            pass
            except BaseException as e:  # reported to the parent through the exit code
                errors.append(repr(e))

        threads = [threading.Thread(target=loop, args=(s,)) for s in servers]
        for t in threads:
            t.start()
        ready.set()
        for t in threads:
            t.join()
        if errors:
            raise SystemExit("server errors: %s" % errors)


def echo_server(domain, runtime_dir, service, count, ready):
    """Answer `count` requests with their payload reversed, then exit."""
    with shoal.Runtime("echo-%d" % os.getpid(), domain=domain, runtime_dir=runtime_dir) as rt:
        with rt.server(service) as server:
            ready.set()
            for _ in range(count):
                with server.take(timeout=10) as request:
                    request.respond(bytes(request.payload)[::-1])


def subscriber_sums(domain, runtime_dir, topic, count, ready, results):
    """Take `count` samples and put (sequence_id, len, sum of bytes) of each in results."""
    with shoal.Runtime("sub-%d" % os.getpid(), domain=domain, runtime_dir=runtime_dir) as rt:
        with rt.subscriber(topic) as sub:
            ready.set()
            for _ in range(count):
                with sub.take(timeout=10) as sample:
                    results.put((sample.sequence_id, len(sample.payload), sum(sample.payload)))


def hold_and_wait(domain, runtime_dir, topic, subscribed, taken):
    """Take one sample and keep it until killed (crash-cleanup test)."""
    rt = shoal.Runtime("holder-%d" % os.getpid(), domain=domain, runtime_dir=runtime_dir)
    sub = rt.subscriber(topic)
    subscribed.set()
    sample = sub.take(timeout=10)
    assert sample.size > 0
    taken.set()
    threading.Event().wait(60)


def publish_array(domain, runtime_dir, topic, nbytes):
    """Publish one array of `nbytes` (uint32 0, 1, 2, ...) written in place with numpy."""
    import numpy as np

    with shoal.Runtime("array-%d" % os.getpid(), domain=domain, runtime_dir=runtime_dir) as rt:
        with rt.publisher(topic, full_policy="wait", send_timeout=30) as pub:
            while pub.subscriber_count == 0:
                threading.Event().wait(0.01)
            with pub.loan(nbytes) as loan:
                arr = loan.array(np.uint32)
                # no copy: the array is the chunk's memory
                assert np.shares_memory(arr, np.asarray(loan.payload))
                arr[:] = np.arange(nbytes // 4, dtype=np.uint32)
                del arr  # an array alive would refuse the send
                loan.send()


def child_env():
    """Environment for a child Python process: the same shoal as this process (installed,
    or a source tree on PYTHONPATH, made absolute so the child may change directory)."""
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(shoal.__file__)))
    paths = [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent] + paths)
    return env
