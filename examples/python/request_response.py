#!/usr/bin/env python3
"""Request/response with shoal: a server process answers, a client asks.

    python examples/python/request_response.py              # starts its own shoald
    python examples/python/request_response.py --domain D   # uses the running shoald of D

The server runs in a child process; the client sends zero-copy requests (loan, write,
send), then uses the copying call() helper. Every loan and take is a `with` block: the
chunk is released at its end, or handed over by send().
"""

import argparse
import multiprocessing
import struct

import shoal

SERVICE = "example/add"


def serve(domain, runtime_dir, count, ready):
    with shoal.Runtime("adder", domain=domain, runtime_dir=runtime_dir) as rt:
        with rt.server(SERVICE) as server:
            ready.set()
            for _ in range(count):
                with server.take(timeout=10.0) as request:
                    a, b = struct.unpack("<qq", request.payload)
                    with request.loan_response(8) as response:
                        struct.pack_into("<q", response.payload, 0, a + b)
                        response.send()


def ask(domain, runtime_dir):
    with shoal.Runtime("asker", domain=domain, runtime_dir=runtime_dir) as rt:
        with rt.client(SERVICE) as client:
            # zero-copy: write straight into shared memory
            with client.loan(16) as request:
                struct.pack_into("<qq", request.payload, 0, 40, 2)
                seq = request.send()
            with client.take(timeout=5.0) as response:
                assert response.sequence_id == seq
                print("40 + 2 =", struct.unpack("<q", response.payload)[0])
            # copying helper: sends, waits for the matching response, returns bytes
            reply = client.call(struct.pack("<qq", 1000, 337), timeout=5.0)
            print("1000 + 337 =", struct.unpack("<q", reply)[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domain", help="use the shoald already running on this domain")
    parser.add_argument("--runtime-dir", help="its runtime dir (default: $SHOAL_RUNTIME_DIR)")
    args = parser.parse_args()

    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()

    def run(domain, runtime_dir):
        server = ctx.Process(target=serve, args=(domain, runtime_dir, 2, ready))
        server.start()
        try:
            if not ready.wait(10):
                raise SystemExit("the server did not start")
            ask(domain, runtime_dir)
        finally:
            server.join(10)

    if args.domain:
        run(args.domain, args.runtime_dir)
    else:
        with shoal.Daemon(pools={64: 256, "4K": 64}) as daemon:
            run(daemon.domain, daemon.runtime_dir)


if __name__ == "__main__":
    main()
