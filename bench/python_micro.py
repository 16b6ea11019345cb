#!/usr/bin/env python3
"""The Python layer's own cost, in one process (no waiting, no cross-core transfer).

    python3 bench/python_micro.py --domain D [--runtime-dir R] [--iters 20000] [--repeat 5]
        [--cases rr,pubsub,poll,loan] [--profile CASE]

Each case is written the way bench/python_bench.py writes a sample (context managers
on both sides), but both sides run in this one thread:

  rr      client loan + write + send; server take + loan_response + write + send +
          release; client take + sequence id + payload check + release
  pubsub  publisher loan + write + publish; subscriber take + read + release
  poll    one try_take() that finds nothing (the busy receiver's empty poll)
  loan    publisher loan + write + release (no send)

Prints the median over --repeat runs of the mean cost per iteration (ns). --profile
CASE runs that case under cProfile and prints where the time goes, with the number
of calls per iteration.
"""
import argparse
import os
import statistics
import sys
import time


def cases(rt, n):
    client = rt.client("micro.rr")
    server = rt.server("micro.rr")
    pub = rt.publisher("micro.ps")
    sub = rt.subscriber("micro.ps")
    lonely = rt.subscriber("micro.nobody")

    def rr(i):
        with client.loan(n) as req:
            req.payload[0:8] = i.to_bytes(8, "little")
            req.payload[n - 1] = i & 0xFF
            seq = req.send()
        request = server.try_take()
        with request:
            j = int.from_bytes(request.payload[0:8], "little")
            with request.loan_response(n) as resp:
                resp.payload[0:8] = j.to_bytes(8, "little")
                resp.payload[n - 1] = j & 0xFF
                resp.send()
        resp = client.try_take()
        with resp:
            good = resp.sequence_id == seq and \
                int.from_bytes(resp.payload[0:8], "little") == i and resp.payload[n - 1] == i & 0xFF
        assert good

    def pubsub(i):
        with pub.loan(n) as ping:
            ping.payload[0:8] = i.to_bytes(8, "little")
            ping.payload[n - 1] = i & 0xFF
            ping.send()
        s = sub.try_take()
        with s:
            assert int.from_bytes(s.payload[0:8], "little") == i and s.payload[n - 1] == i & 0xFF

    def poll(i):
        lonely.try_take()

    def loan(i):
        with pub.loan(n) as m:
            m.payload[0:8] = i.to_bytes(8, "little")

    ports = (client, server, pub, sub, lonely)
    return {"rr": rr, "pubsub": pubsub, "poll": poll, "loan": loan}, ports


def run(fn, iters):
    t0 = time.perf_counter_ns()
    for i in range(iters):
        fn(i)
    return (time.perf_counter_ns() - t0) / iters


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domain", default=os.environ.get("SHOAL_DOMAIN"))
    ap.add_argument("--runtime-dir", default=os.environ.get("SHOAL_RUNTIME_DIR"))
    ap.add_argument("--iters", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--payload", type=int, default=64)
    ap.add_argument("--cases", default="rr,pubsub,poll,loan")
    ap.add_argument("--profile", default=None)
    ap.add_argument("--cpu", type=int, default=-1)
    args = ap.parse_args()
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    import shoal
    with shoal.Runtime("micro", domain=args.domain, runtime_dir=args.runtime_dir) as rt:
        fns, ports = cases(rt, args.payload)
        if args.profile:
            import cProfile
            import pstats
            fn = fns[args.profile]
            run(fn, 1000)
            prof = cProfile.Profile()
            prof.enable()
            run(fn, args.iters)
            prof.disable()
            st = pstats.Stats(prof, stream=sys.stdout)
            st.sort_stats("tottime")
            print("calls per iteration:")
            for (file, line, name), (cc, nc, tt, ct, _) in sorted(
                    st.stats.items(), key=lambda kv: -kv[1][2]):
                print("  %6.2f  %8.1f ns own  %s:%d(%s)" % (
                    nc / args.iters, tt * 1e9 / args.iters, os.path.basename(file), line, name))
            return 0
        for name in args.cases.split(","):
            fn = fns[name]
            run(fn, min(2000, args.iters))
            res = [run(fn, args.iters) for _ in range(args.repeat)]
            print("%-7s %8.0f ns  (runs: %s) backend=%s" % (
                name, statistics.median(res), " ".join("%.0f" % r for r in res),
                shoal.backend_name()), flush=True)
        for p in ports:
            p.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
