#!/usr/bin/env python3
"""numpy arrays over shoal without a copy: a publisher fills arrays in shared memory,
a subscriber in another process reads them in place.

    python examples/python/numpy_arrays.py              # starts its own shoald
    python examples/python/numpy_arrays.py --domain D   # uses the running shoald of D
                                                        # (it needs a pool of >= 100 MB chunks)

``loan.array(dtype, shape)`` is a writable ndarray on the loaned chunk,
``sample.array(dtype, shape)`` a read-only one on the received chunk: no byte is copied
on either side. An array is an export of the payload: the loan cannot be sent while one
is alive (drop it first), and a received chunk stays held until its arrays are gone.
"""

import argparse
import multiprocessing
import time

import numpy as np

import shoal

TOPIC = "example/arrays"
COUNT = 3
SHAPE = (5000, 5000)          # 25 M float32 = 100 MB per array
DTYPE = np.float32
NBYTES = int(np.prod(SHAPE)) * np.dtype(DTYPE).itemsize


def subscribe(domain, runtime_dir, ready):
    with shoal.Runtime("array-viewer", domain=domain, runtime_dir=runtime_dir) as rt:
        with rt.subscriber(TOPIC) as sub:
            ready.set()
            for _ in range(COUNT):
                with sub.take(timeout=30.0) as sample:
                    a = sample.array(DTYPE, SHAPE)     # read-only, on the chunk itself
                    in_place = np.shares_memory(a, np.asarray(sample.payload))
                    print("array %d: shape %s, %.0f MB, row 0 mean %.1f, corner %.1f, "
                          "zero-copy %s" % (sample.sequence_id, a.shape, a.nbytes / 1e6,
                                            a[0].mean(), a[-1, -1], in_place))
                    del a                              # before the block ends: released now


def publish(domain, runtime_dir):
    with shoal.Runtime("array-maker", domain=domain, runtime_dir=runtime_dir) as rt:
        with rt.publisher(TOPIC, full_policy="wait", send_timeout=30.0) as pub:
            while pub.subscriber_count == 0:
                time.sleep(0.01)
            for i in range(COUNT):
                with pub.loan(NBYTES) as loan:
                    a = loan.array(DTYPE, SHAPE)       # writable, on the chunk itself
                    a[0] = np.arange(SHAPE[1], dtype=DTYPE) + i
                    a[-1, -1] = 1000 + i
                    del a                              # an array alive would refuse send()
                    loan.send()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domain", help="use the shoald already running on this domain")
    parser.add_argument("--runtime-dir", help="its runtime dir (default: $SHOAL_RUNTIME_DIR)")
    args = parser.parse_args()

    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()

    def run(domain, runtime_dir):
        viewer = ctx.Process(target=subscribe, args=(domain, runtime_dir, ready))
        viewer.start()
        try:
            if not ready.wait(10):
                raise SystemExit("the subscriber did not start")
            publish(domain, runtime_dir)
        finally:
            viewer.join(60)
        if viewer.exitcode != 0:
            raise SystemExit("the subscriber failed (exit code %s)" % viewer.exitcode)

    if args.domain:
        run(args.domain, args.runtime_dir)
    else:
        # chunks of 128 MiB for the arrays: a pool must be configured for large payloads
        with shoal.Daemon(pools={64: 64, "128M": 4}) as daemon:
            run(daemon.domain, daemon.runtime_dir)


if __name__ == "__main__":
    main()
