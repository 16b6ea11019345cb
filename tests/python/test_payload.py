"""One chunk lifecycle, one buffer exporter: payload views, slices and numpy arrays.

A view, slice or array made from a payload never reads another message or unmapped
memory: a send is refused while one lives, a release waits for the last one.
"""

import gc
import multiprocessing
import os
import subprocess
import sys

import pytest

import shoal
import shoal_workers

np = pytest.importorskip("numpy")

SPAWN = multiprocessing.get_context("spawn")


def _held(rt, name):
    """Chunks held by this process's port(s) on `name`, as the daemon counts them."""
    return sum(p.held for p in rt.ports(pid=os.getpid()) if p.service == name)


def _port_exists(rt, name, process=None):
    return any(p.service == name and (process is None or p.process == process)
               for p in rt.ports())


# ---- release: at once without exports, deferred with them ---------------------------

def test_leaving_the_block_without_export_releases_at_once(shoal_runtime):
    rt = shoal_runtime
    with rt.publisher("pl/plain") as pub, rt.subscriber("pl/plain") as sub:
        with pub.loan(64) as loan:
            view = loan.payload
            view[:5] = b"hello"
            loan.send()
        with sub.take(timeout=1) as sample:
            assert bytes(sample.payload[:5]) == b"hello"   # a temporary slice: gone at once
            assert sample.payload.readonly
        assert _held(rt, "pl/plain") == 0
        assert sub.deferred_releases == 0 and rt.deferred_releases() == {}
        with pytest.raises(ValueError):
            view[0]  # noqa: B018 - the view of a sent loan is released


def test_kept_slice_never_reads_the_next_message(shoal_runtime):
    rt = shoal_runtime
    with rt.publisher("pl/slice") as pub, rt.subscriber("pl/slice") as sub:
        pub.publish(b"first message")
        with sub.take(timeout=1) as sample:
            kept = sample.payload[:5]
            as_mv = memoryview(sample.payload)[6:13]
        assert sample.released
        with pytest.raises(shoal.ReleasedError):
            sample.payload  # noqa: B018
        # the chunk is still held, counted against the port, reported by the API
        assert _held(rt, "pl/slice") == 1
        assert sub.deferred_releases == 1
        assert rt.deferred_releases() == {"subscriber 'pl/slice'": 1}
        for _ in range(3):   # the pool would hand the same chunk out again
            pub.publish(b"OTHER MESSAGE")
            with sub.take(timeout=1) as other:
                assert bytes(other.payload) == b"OTHER MESSAGE"
        assert bytes(kept) == b"first" and bytes(as_mv) == b"message"
        del kept
        assert _held(rt, "pl/slice") == 1   # as_mv still alive
        as_mv.release()
        assert _held(rt, "pl/slice") == 0 and sub.deferred_releases == 0


def test_numpy_frombuffer_outlives_the_block(shoal_runtime):
    rt = shoal_runtime
    with rt.publisher("pl/np") as pub, rt.subscriber("pl/np") as sub:
        pub.publish(np.arange(8, dtype=np.int64).tobytes())
        with sub.take(timeout=1) as sample:
            arr = np.frombuffer(sample.payload, dtype=np.int64)
        pub.publish(np.full(8, -1, dtype=np.int64).tobytes())
        with sub.take(timeout=1) as other:
            assert np.frombuffer(other.payload, dtype=np.int64).sum() == -8
        assert arr.tolist() == list(range(8))
        assert not arr.flags.writeable
        assert _held(rt, "pl/np") == 1
        del arr
        gc.collect()
        assert _held(rt, "pl/np") == 0


@pytest.mark.shoal_allow_leaks  # releases by the garbage collector on purpose
def test_garbage_collected_chunk_with_live_export(shoal_daemon):
    with shoal_daemon.runtime("pl-gc") as rt:
        pub = rt.publisher("pl/gc")
        sub = rt.subscriber("pl/gc")
        pub.publish(b"abcdef")
        sample = sub.take(timeout=1)
        kept = sample.payload[2:4]
        with pytest.warns(ResourceWarning):
            del sample
            gc.collect()
        assert bytes(kept) == b"cd" and _held(rt, "pl/gc") == 1
        del kept
        assert _held(rt, "pl/gc") == 0


# ---- send: refused before anything is sent ------------------------------------------

@pytest.mark.parametrize("how", ["slice", "frombuffer", "array", "memoryview-export"])
def test_send_with_a_live_export_is_refused_before_sending(shoal_runtime, how):
    rt = shoal_runtime
    with rt.publisher("pl/refuse") as pub, rt.subscriber("pl/refuse") as sub:
        with pub.loan(16) as loan:
            view = loan.payload
            view[:] = b"A" * 16
            if how == "slice":
                export = view[0:8]
            elif how == "frombuffer":
                export = np.frombuffer(view, dtype=np.uint8)
            elif how == "array":
                export = loan.array(np.uint8, 16)
            else:
                export = np.asarray(memoryview(view))
            with pytest.raises(shoal.PayloadExportedError) as info:
                loan.publish()
            msg = str(info.value)
            assert "Nothing was sent" in msg and "publisher 'pl/refuse'" in msg, msg
            assert "shoal_" not in msg, msg
            assert not loan.released
            with pytest.raises(shoal.Timeout):
                sub.take(timeout=0)          # nothing reached the subscriber
            view[0] = ord("B")               # the loan and its view still work
            export[1] = ord("C")             # ... and so does the export
            del export
            loan.send()                      # sendable once the export is gone
            assert loan.released
        with sub.take(timeout=1) as sample:
            assert bytes(sample.payload) == b"BC" + b"A" * 14
        assert _held(rt, "pl/refuse") == 0


def test_refused_loan_can_still_be_released(shoal_runtime):
    rt = shoal_runtime
    with rt.publisher("pl/refuse-rel") as pub:
        with pub.loan(8) as loan:
            arr = loan.array(np.uint8)
            with pytest.raises(shoal.PayloadExportedError):
                loan.send()
        assert loan.released                 # the with block released it (deferred)
        assert _held(rt, "pl/refuse-rel") == 1
        arr[:] = 7                           # still our chunk: nobody else sees this
        del arr
        assert _held(rt, "pl/refuse-rel") == 0


def test_request_and_response_sends_are_refused_too(shoal_runtime):
    rt = shoal_runtime
    with rt.server("pl/svc") as server, rt.client("pl/svc") as client:
        with client.loan(4) as req:
            req.payload[:] = b"ping"
            kept = req.payload[:2]
            with pytest.raises(shoal.PayloadExportedError):
                req.send()
            del kept
            seq = req.send()
        with server.take(timeout=1) as request:
            with request.loan_response(4) as resp:
                arr = resp.array(np.uint8)
                arr[:] = np.frombuffer(b"pong", dtype=np.uint8)
                with pytest.raises(shoal.PayloadExportedError):
                    resp.send()
                del arr
                resp.send()
        with client.take(timeout=1) as response:
            assert response.sequence_id == seq and bytes(response.payload) == b"pong"


def test_set_size_with_a_live_export_is_refused(shoal_runtime):
    with shoal_runtime.publisher("pl/resize") as pub:
        with pub.loan(32) as loan:
            kept = loan.payload[:4]
            with pytest.raises(shoal.PayloadExportedError):
                loan.set_size(8)
            assert len(loan.payload) == 32
            del kept
            loan.set_size(8)
            assert len(loan.payload) == 8


# ---- close: the mapping stays while exports live ------------------------------------

def test_port_close_waits_for_exports(shoal_runtime):
    rt = shoal_runtime
    pub = rt.publisher("pl/portclose")
    sub = rt.subscriber("pl/portclose")
    pub.publish(b"still here")
    with sub.take(timeout=1) as sample:
        arr = sample.array(np.uint8)
    sub.close()
    assert sub.closed
    with pytest.raises(shoal.ClosedError):
        sub.take(timeout=0)
    assert _held(rt, "pl/portclose") == 1            # the C port still exists
    assert arr.tobytes() == b"still here"
    del arr
    assert not any(p.service == "pl/portclose" and p.kind == shoal.PortKind.SUBSCRIBER
                   for p in rt.ports(pid=os.getpid()))
    pub.close()


def test_runtime_close_waits_for_exports(shoal_daemon, shoal_runtime):
    rt = shoal_daemon.runtime("pl-rtclose")
    pub = rt.publisher("pl/rtclose")
    sub = rt.subscriber("pl/rtclose")
    pub.publish(b"mapped until the last export dies")
    with sub.take(timeout=1) as sample:
        arr = sample.array(np.uint8)
        kept = sample.payload[:6]
    rt.close()
    assert rt.closed and sub.closed and pub.closed
    with pytest.raises(shoal.ClosedError):
        rt.publisher("pl/rtclose2")
    # still registered: the publisher is gone, the subscriber waits for its exports
    assert _port_exists(shoal_runtime, "pl/rtclose", "pl-rtclose")
    assert arr.tobytes() == b"mapped until the last export dies"
    del arr
    assert bytes(kept) == b"mapped"
    del kept
    assert not _port_exists(shoal_runtime, "pl/rtclose", "pl-rtclose")


CLOSE_SCRIPT = r'''
import gc, sys
import numpy as np
import shoal

domain, runtime_dir = sys.argv[1:3]
rt = shoal.Runtime("pl-segv", domain=domain, runtime_dir=runtime_dir)
pub, sub = rt.publisher("pl/segv"), rt.subscriber("pl/segv")
pub.publish(bytes(range(256)) * 4096)
with sub.take(timeout=1) as s:
    arr = np.frombuffer(s.payload, dtype=np.uint8)
    kept = s.payload[-3:]
rt.close()
for _ in range(3):
    gc.collect()
assert arr.sum() == sum(range(256)) * 4096, arr.sum()
assert bytes(kept) == bytes([253, 254, 255])
del arr, kept
gc.collect()
print("ok")
'''


def test_export_alive_after_runtime_close_in_a_child(shoal_daemon):
    """The same in a process of its own: before the exporter, this read unmapped memory."""
    out = subprocess.run([sys.executable, "-c", CLOSE_SCRIPT, shoal_daemon.domain,
                          shoal_daemon.runtime_dir], env=shoal_workers.child_env(),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", \
        "exit %d\n%s%s" % (out.returncode, out.stdout, out.stderr)


# ---- numpy: chunk.array() -----------------------------------------------------------

def test_array_on_loan_and_sample(shoal_runtime):
    rt = shoal_runtime
    with rt.publisher("pl/array") as pub, rt.subscriber("pl/array") as sub:
        with pub.loan(4 * 8 * 8) as loan:
            out = loan.array(np.float64, (4, 8))
            assert out.shape == (4, 8) and out.flags.writeable
            assert np.shares_memory(out, np.asarray(loan.payload))
            out[:] = np.arange(32, dtype=np.float64).reshape(4, 8)
            del out
            loan.send()
        with sub.take(timeout=1) as sample:
            got = sample.array("<f8", (4, 8))
            assert not got.flags.writeable
            with pytest.raises(ValueError):
                got[0, 0] = 1
            assert got.ctypes.data == np.frombuffer(sample.payload, np.uint8).ctypes.data
            assert (got == np.arange(32).reshape(4, 8)).all()
            flat = sample.array(np.float64)
            assert flat.shape == (32,)
            with pytest.raises(ValueError, match="needs 264 bytes"):
                sample.array(np.float64, 33)
            with pytest.raises(ValueError, match="whole number"):
                sample.array(np.dtype((np.uint8, 3)))
            del got, flat
        with pytest.raises(shoal.ReleasedError):
            sample.array(np.uint8)
        assert _held(rt, "pl/array") == 0


def test_large_array_across_processes(tmp_path):
    """A 100 MB array published by another process, received here without a copy."""
    nbytes = 100 * 1024 * 1024
    with shoal.Daemon(pools={64: 64, "128M": 2}) as daemon, daemon.runtime("pl-big") as rt:
        with rt.subscriber("pl/big") as sub:
            proc = SPAWN.Process(target=shoal_workers.publish_array,
                                 args=(daemon.domain, daemon.runtime_dir, "pl/big", nbytes))
            proc.start()
            try:
                with sub.take(timeout=60) as sample:
                    assert sample.size == nbytes
                    arr = sample.array(np.uint32)
                    base = np.frombuffer(sample.payload, np.uint8).ctypes.data
                    assert arr.ctypes.data == base        # no copy: the chunk itself
                    assert np.shares_memory(arr, np.asarray(sample.payload))
                    assert not arr.flags.writeable
                    expected = np.arange(nbytes // 4, dtype=np.uint32)
                    assert np.array_equal(arr, expected)
                    del arr, expected
            finally:
                proc.join(60)
            assert proc.exitcode == 0
        assert all(p.in_use == 0 for p in rt.pools())
