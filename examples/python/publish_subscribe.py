#!/usr/bin/env python3
"""Publish/subscribe with shoal: one publisher, a subscriber in another process.

    python examples/python/publish_subscribe.py              # starts its own shoald
    python examples/python/publish_subscribe.py --domain D   # uses the running shoald of D

The publisher loans chunks of shared memory, fills them in place and publishes them;
the subscriber reads them without a copy. Samples of 1 MiB cross processes by
reference, so the cost does not grow with the size.
"""

import argparse
import multiprocessing
import time

import shoal

TOPIC = "example/frames"
COUNT = 10
SIZE = 1 << 20


def subscribe(domain, runtime_dir, ready):
    with shoal.Runtime("viewer", domain=domain, runtime_dir=runtime_dir) as rt:
        with rt.subscriber(TOPIC) as sub:
            ready.set()
            for _ in range(COUNT):
                with sub.take(timeout=10.0) as frame:
                    view = frame.payload          # zero-copy memoryview on the chunk
                    print("frame %2d: %d bytes, first byte %d, last byte %d"
                          % (frame.sequence_id, len(view), view[0], view[-1]))


def publish(domain, runtime_dir):
    with shoal.Runtime("camera", domain=domain, runtime_dir=runtime_dir) as rt:
        # WAIT: if the subscriber falls behind, publishing waits instead of dropping
        with rt.publisher(TOPIC, full_policy="wait", send_timeout=5.0) as pub:
            while pub.subscriber_count == 0:
                time.sleep(0.01)
            for i in range(COUNT):
                with pub.loan(SIZE) as frame:
                    frame.payload[0] = i
                    frame.payload[-1] = 255 - i
                    frame.send()


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
            viewer.join(20)

    if args.domain:
        run(args.domain, args.runtime_dir)
    else:
        with shoal.Daemon(pools={64: 256, "1M": 16}) as daemon:
            run(daemon.domain, daemon.runtime_dir)


if __name__ == "__main__":
    main()
