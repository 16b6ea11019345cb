#!/usr/bin/env python3
"""Python rows of the benchmark (issue 6): shoal's Python binding, and iceoryx2's.

    python3 bench/python_bench.py --domain D [--runtime-dir R] --cpu-a 0 --cpu-b 1 \
        --iters 20000 [--repeat 3] [--payloads 64,4K,1M] [--modes busy,block] \
        [--patterns rr,pubsub] [--suites shoal-python,iceoryx2-python] [--no-header]
    python3 bench/python_bench.py --domain D --pools        # pool usage, then exit
    python3 bench/python_bench.py --domain D --wait-pools 10 # wait until no chunk is in use

bench/run.sh runs it with shoald running (SHOAL_DOMAIN / SHOAL_RUNTIME_DIR set) and
merges the CSV it prints on stdout (header of bench/bench_common.h) into latest.csv.

What one sample is, exactly as a user of the Pythonic layer writes it (context managers
on both sides, nothing cached between iterations):

  rr, side A (client):   with client.loan(n) as req: write; seq = req.send()
                         then take (busy: try_take() until it returns a chunk;
                         block: take(timeout=1.0)),
                         with ... as resp: check sequence id and payload
  rr, side B (server):   with server.take(...) as request:
                             with request.loan_response(n) as resp: write; resp.send()
  pubsub:                ping-pong over two topics, one-way = round trip / 2.

Side A and side B are two fresh Python processes per configuration and run (this
script re-executed with --side), pinned with sched_setaffinity; the parent only starts
them, waits for them (SIGKILL by pid after --timeout) and computes the statistics.
Only the first 8 bytes and the last byte of a payload are written and read, as in C.

Between configurations the parent checks the domain's pools (shoal.Runtime.pools()):
when a run ended abnormally (a side killed), it waits until every chunk is back
(in_use == 0) before the next configuration, and says so in the note column.

iceoryx2 (PyPI package `iceoryx2`, no daemon): request/response with Slice[c_uint8]
payloads through loan_slice_uninit/assume_init/send and receive/delete, and
publish/subscribe the same way. Its ports have no blocking receive: busy = receive()
in a loop; block = iceoryx2's own way to sleep until data arrives, an event service
per direction (Notifier.notify() after each send, Listener.timed_wait() when
receive() returns nothing); those rows say "event service".
"""
import argparse
import array
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HEADER = ("suite,pattern,mode,payload,pairs,iters,median_ns,p99_ns,p999_ns,max_ns,"
          "throughput_per_s,cpus,note")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCK_TIMEOUT = 1.0  # seconds, one blocking take


def log(msg):
    print("python_bench: " + msg, file=sys.stderr, flush=True)


def parse_size(s):
    s = s.strip().upper().rstrip("B") or "0"
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1], 1)
    return int(s[:-1] if s[-1] in "KMG" else s) * mult


# ---- freshness of the installed shoal package ----------------------------------------

def newest_source_mtime():
    newest = 0.0
    for sub in ("capi/include", "capi/src", "python/shoal"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, sub)):
            for f in files:
                if f.endswith((".c", ".h", ".py")) and not f.startswith("_shoal_cffi"):
                    newest = max(newest, os.path.getmtime(os.path.join(dirpath, f)))
    return newest


def shoal_status():
    """(ok, path, why) of the `shoal` package this interpreter imports, in a child
    (so that a stale extension is never loaded into this process)."""
    code = ("import shoal, shoal._backend_cffi as b, os, json; "
            "m = getattr(b, 'lib', None); "
            "so = [os.path.join(os.path.dirname(shoal.__file__), f) "
            "      for f in os.listdir(os.path.dirname(shoal.__file__)) "
            "      if f.startswith('_shoal_cffi') and f.endswith('.so')]; "
            "print(json.dumps({'path': shoal.__file__, 'so': so}))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if p.returncode != 0:
        return False, None, "import shoal failed: " + (p.stderr.strip().splitlines() or ["?"])[-1]
    info = json.loads(p.stdout)
    if not info["so"]:
        return False, info["path"], "no compiled extension next to " + info["path"]
    so_mtime = max(os.path.getmtime(s) for s in info["so"])
    if so_mtime < newest_source_mtime():
        return False, info["path"], "extension older than capi/ or python/shoal sources"
    return True, info["path"], ""


def ensure_shoal(install):
    ok, path, why = shoal_status()
    if ok:
        return path
    if not install:
        raise SystemExit("python_bench: shoal package not usable (%s); run "
                         "`pip install .` in %s or pass --install" % (why, ROOT))
    log("shoal package not usable (%s): pip install %s" % (why, ROOT))
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--no-build-isolation", ROOT], stdout=sys.stderr, stderr=sys.stderr)
    if r.returncode != 0:
        raise SystemExit("python_bench: pip install of shoal failed")
    ok, path, why = shoal_status()
    if not ok:
        raise SystemExit("python_bench: after pip install the shoal package is still not "
                         "usable: %s (is a stale copy first on PYTHONPATH?)" % why)
    return path


# ---- statistics -------------------------------------------------------------------------

def stats(samples, scale):
    s = sorted(samples)
    n = len(s)
    if n == 0:
        return None

    def pct(q):
        rank = min(n, max(1, int(q * n + 0.999999)))
        return s[rank - 1] * scale

    med = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0
    return med * scale, pct(0.99), pct(0.999), s[-1] * scale


def cpus_str(a, b):
    f = lambda c: "any" if c < 0 else str(c)
    return "a=%s;b=%s;ncpu=%d" % (f(a), f(b), os.cpu_count() or 1)


def csv_clean(s):
    return s.replace(",", ";").replace("\n", " ").replace('"', " ")


def row(suite, pattern, mode, payload, iters, st, tput, cpus, note):
    if st is None:
        return "%s,%s,%s,%d,1,%d,,,,,,%s,%s" % (suite, pattern, mode, payload, iters, cpus,
                                                csv_clean(note))
    return "%s,%s,%s,%d,1,%d,%.1f,%.1f,%.1f,%.1f,%.1f,%s,%s" % (
        suite, pattern, mode, payload, iters, st[0], st[1], st[2], st[3], tput, cpus,
        csv_clean(note))


# ---- the sides (child processes) --------------------------------------------------------

def pin(cpu):
    if cpu >= 0:
        os.sched_setaffinity(0, {cpu})


def write_mark(view, n, i):
    view[0:8] = i.to_bytes(8, "little")
    view[n - 1] = (i * 31 + 7) & 0xFF


def check_mark(view, n, i):
    return int.from_bytes(view[0:8], "little") == i and view[n - 1] == (i * 31 + 7) & 0xFF


def side_shoal(cfg):
    import shoal
    n, total, warm = cfg["payload"], cfg["warmup"] + cfg["iters"], cfg["warmup"]
    busy = cfg["mode"] == "busy"
    tmo = 0 if busy else BLOCK_TIMEOUT
    Timeout = shoal.Timeout
    name = cfg["name"]
    with shoal.Runtime("pybench-%s-%d" % (cfg["side"], os.getpid()), domain=cfg["domain"],
                       runtime_dir=cfg["runtime_dir"]) as rt:
        if cfg["pattern"] == "rr":
            if cfg["side"] == "B":
                with rt.server(name) as server:
                    print("ready", flush=True)
                    done = 0
                    while done < total:
                        if busy:  # a poll that finds nothing must not cost an exception
                            request = server.try_take()
                            if request is None:
                                continue
                        else:
                            try:
                                request = server.take(timeout=tmo)
                            except Timeout:
                                continue
                        with request:
                            i = int.from_bytes(request.payload[0:8], "little")
                            with request.loan_response(n) as resp:
                                write_mark(resp.payload, n, i)
                                resp.send()
                        done += 1
                return None
            with rt.client(name) as client:
                wait_matched(lambda: client.server_count)
                samples = array.array("Q", bytes(8 * cfg["iters"]))
                clock = time.perf_counter_ns
                t_start = 0
                for i in range(total):
                    if i == warm:
                        t_start = clock()
                    t0 = clock()
                    with client.loan(n) as req:
                        write_mark(req.payload, n, i)
                        seq = req.send()
                    while True:
                        if busy:
                            resp = client.try_take()
                            if resp is not None:
                                break
                            continue
                        try:
                            resp = client.take(timeout=tmo)
                            break
                        except Timeout:
                            continue
                    with resp:
                        good = resp.sequence_id == seq and check_mark(resp.payload, n, i)
                    t1 = clock()
                    if not good:
                        raise SystemExit("response %d: wrong sequence id or payload" % i)
                    if i >= warm:
                        samples[i - warm] = t1 - t0
                return samples, clock() - t_start
        # pubsub ping-pong: A publishes ping, B takes it and publishes pong
        out_t, in_t = ((name + ".ping", name + ".pong") if cfg["side"] == "A"
                       else (name + ".pong", name + ".ping"))
        with rt.publisher(out_t) as pub, rt.subscriber(in_t) as sub:
            if cfg["side"] == "B":
                print("ready", flush=True)
                for _ in range(total):
                    while True:
                        if busy:
                            ping = sub.try_take()
                            if ping is not None:
                                break
                            continue
                        try:
                            ping = sub.take(timeout=tmo)
                            break
                        except Timeout:
                            continue
                    with ping:
                        i = int.from_bytes(ping.payload[0:8], "little")
                    with pub.loan(n) as pong:
                        write_mark(pong.payload, n, i)
                        pong.send()
                return None
            wait_matched(lambda: pub.subscriber_count)
            samples = array.array("Q", bytes(8 * cfg["iters"]))
            clock = time.perf_counter_ns
            t_start = 0
            for i in range(total):
                if i == warm:
                    t_start = clock()
                t0 = clock()
                with pub.loan(n) as ping:
                    write_mark(ping.payload, n, i)
                    ping.send()
                while True:
                    if busy:
                        pong = sub.try_take()
                        if pong is not None:
                            break
                        continue
                    try:
                        pong = sub.take(timeout=tmo)
                        break
                    except Timeout:
                        continue
                with pong:
                    good = check_mark(pong.payload, n, i)
                t1 = clock()
                if not good:
                    raise SystemExit("pong %d: wrong payload" % i)
                if i >= warm:
                    samples[i - warm] = t1 - t0
            return samples, clock() - t_start


def wait_matched(count, secs=15.0):
    deadline = time.monotonic() + secs
    while count() < 1:
        if time.monotonic() > deadline:
            raise SystemExit("peer not matched within %g s" % secs)
        time.sleep(0.001)


def side_iceoryx2(cfg):
    """iceoryx2's Python binding. busy: receive() until it returns a sample; block: the
    iceoryx2 way to sleep until data arrives, an event service next to the data service
    (the sender's Notifier.notify() after each send, the receiver's Listener.timed_wait())."""
    import ctypes
    import iceoryx2 as iox2
    iox2.set_log_level_from_env_or(iox2.LogLevel.Warn)
    n, total, warm = cfg["payload"], cfg["warmup"] + cfg["iters"], cfg["warmup"]
    node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
    u8 = iox2.Slice[ctypes.c_uint8]
    clock = time.perf_counter_ns
    block = cfg["mode"] == "block"
    slice_ = iox2.Duration.from_secs_f64(BLOCK_TIMEOUT)
    name = cfg["name"]
    side = cfg["side"]

    def events(out_name, in_name):
        """(notify, wait) for this side: notify `out_name`, wait on `in_name`."""
        if not block:
            return (lambda: None), (lambda: None)
        ev_out = node.service_builder(iox2.ServiceName.new(out_name)).event().open_or_create()
        ev_in = node.service_builder(iox2.ServiceName.new(in_name)).event().open_or_create()
        notifier = ev_out.notifier_builder().create()
        listener = ev_in.listener_builder().create()
        return notifier.notify, (lambda: listener.timed_wait(slice_))

    def receive(recv, wait):
        while True:
            x = recv()
            if x is not None:
                return x
            wait()  # busy: nothing; block: sleep until notified (or 1 s)

    def wait_count(count, what):
        deadline = time.monotonic() + 15
        while count() < 1:
            if time.monotonic() > deadline:
                raise SystemExit("iceoryx2: no %s within 15 s" % what)
            time.sleep(0.001)

    if cfg["pattern"] == "rr":
        svc = (node.service_builder(iox2.ServiceName.new(name))
               .request_response(u8, u8).open_or_create())
        if side == "B":
            notify, wait = events(name + ".resp_ev", name + ".req_ev")
            server = svc.server_builder().initial_max_slice_len(n).create()
            print("ready", flush=True)
            for _ in range(total):
                active = receive(server.receive, wait)
                i = int.from_bytes(active.payload().as_memory_view()[0:8], "little")
                resp = active.loan_slice_uninit(n)
                write_mark(resp.payload().as_memory_view().cast("B"), n, i)
                resp.assume_init().send()
                notify()
                active.delete()
            time.sleep(0.2)  # let the client take the last response before we go
            server.delete()
            return None
        notify, wait = events(name + ".req_ev", name + ".resp_ev")
        client = svc.client_builder().initial_max_slice_len(n).create()
        wait_count(lambda: svc.dynamic_config.number_of_servers, "server")
        samples = array.array("Q", bytes(8 * cfg["iters"]))
        t_start = 0
        for i in range(total):
            if i == warm:
                t_start = clock()
            t0 = clock()
            req = client.loan_slice_uninit(n)
            write_mark(req.payload().as_memory_view().cast("B"), n, i)
            pending = req.assume_init().send()
            notify()
            resp = receive(pending.receive, wait)
            good = check_mark(resp.payload().as_memory_view().cast("B"), n, i)
            resp.delete()
            pending.delete()
            t1 = clock()
            if not good:
                raise SystemExit("iceoryx2 response %d: wrong payload" % i)
            if i >= warm:
                samples[i - warm] = t1 - t0
        span = clock() - t_start
        client.delete()
        return samples, span
    out_t, in_t = ((name + ".ping", name + ".pong") if side == "A"
                   else (name + ".pong", name + ".ping"))
    notify, wait = events(out_t + "_ev", in_t + "_ev")
    svc_out = node.service_builder(iox2.ServiceName.new(out_t)) \
        .publish_subscribe(u8).open_or_create()
    svc_in = node.service_builder(iox2.ServiceName.new(in_t)) \
        .publish_subscribe(u8).open_or_create()
    pub = svc_out.publisher_builder().initial_max_slice_len(n).create()
    sub = svc_in.subscriber_builder().create()
    if side == "B":
        print("ready", flush=True)
        for _ in range(total):
            s = receive(sub.receive, wait)
            i = int.from_bytes(s.payload().as_memory_view()[0:8], "little")
            s.delete()
            m = pub.loan_slice_uninit(n)
            write_mark(m.payload().as_memory_view().cast("B"), n, i)
            m.assume_init().send()
            notify()
        time.sleep(0.2)
        return None
    wait_count(lambda: svc_out.dynamic_config.number_of_subscribers, "subscriber")
    samples = array.array("Q", bytes(8 * cfg["iters"]))
    t_start = 0
    for i in range(total):
        if i == warm:
            t_start = clock()
        t0 = clock()
        m = pub.loan_slice_uninit(n)
        write_mark(m.payload().as_memory_view().cast("B"), n, i)
        m.assume_init().send()
        notify()
        s = receive(sub.receive, wait)
        good = check_mark(s.payload().as_memory_view().cast("B"), n, i)
        s.delete()
        t1 = clock()
        if not good:
            raise SystemExit("iceoryx2 pong %d: wrong payload" % i)
        if i >= warm:
            samples[i - warm] = t1 - t0
    return samples, clock() - t_start


def side_main(args):
    cfg = json.loads(args.side)
    pin(cfg["cpu"])
    fn = side_shoal if cfg["suite"] == "shoal-python" else side_iceoryx2
    out = fn(cfg)
    if out is not None:
        samples, span = out
        with open(cfg["out"], "wb") as f:
            f.write(span.to_bytes(8, "little"))
            samples.tofile(f)
    return 0


# ---- the parent ---------------------------------------------------------------------------

class Pools:
    """The domain's pool usage, seen through a Runtime of this (parent) process."""

    def __init__(self, domain, runtime_dir):
        import shoal
        try:
            self.rt = shoal.Runtime("pybench-monitor", domain=domain, runtime_dir=runtime_dir)
        except shoal.CorruptError as e:
            raise SystemExit("python_bench: %s: shoald and the Python package were probably "
                             "built from different sources (rebuild both)" % e)

    def in_use(self):
        return {p.chunk_size: p.in_use for p in self.rt.pools() if p.in_use}

    def wait_free(self, secs):
        """Wait until no chunk is in use; return (seconds waited, what was still in use)."""
        t0 = time.monotonic()
        busy = self.in_use()
        while busy and time.monotonic() - t0 < secs:
            time.sleep(0.05)
            busy = self.in_use()
        return time.monotonic() - t0, busy

    def close(self):
        self.rt.close()


def run_once(args, cfg, tmpdir):
    """One run of one configuration in two fresh processes; (samples, span_ns) or error."""
    me = [sys.executable, os.path.abspath(__file__)]
    out = os.path.join(tmpdir, "samples.bin")
    if os.path.exists(out):
        os.unlink(out)
    b_cfg = dict(cfg, side="B", cpu=args.cpu_b)
    a_cfg = dict(cfg, side="A", cpu=args.cpu_a, out=out)
    procs = []
    killed = []
    err = ""
    deadline = time.monotonic() + args.timeout
    # iceoryx2 prints "No config file was loaded..." on every start: keep the sides'
    # stderr in a file and show it only when the run fails
    errpath = os.path.join(tmpdir, "sides.err")
    errf = open(errpath, "w")
    try:
        pb = subprocess.Popen(me + ["--side", json.dumps(b_cfg)], stdout=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, stderr=errf, text=True)
        procs.append(pb)
        while True:  # "ready" once the server/subscriber exists; other lines: libraries'
            line = pb.stdout.readline()
            if not line or line.strip() == "ready":
                break
            errf.write(line)
        if line.strip() != "ready":
            pb.wait(timeout=10)
            return None, "side B did not start (exit %s)" % pb.returncode, killed
        # side A's stdout goes to our stderr: only the parent writes CSV on stdout
        pa = subprocess.Popen(me + ["--side", json.dumps(a_cfg)], stdin=subprocess.DEVNULL,
                              stdout=errf, stderr=errf)
        procs.append(pa)
        for p, what in ((pa, "A"), (pb, "B")):
            try:
                rc = p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                err = err or "timeout after %g s" % args.timeout
                break
            if rc != 0:
                err = err or "side %s exited %s" % (what, rc)
                break
    finally:
        for p in procs:  # stop what is left, by pid
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                killed.append(p.pid)
            p.wait()
            if p.stdout:
                p.stdout.close()
        errf.close()
    if err:
        with open(errpath) as f:
            lines = [l.rstrip() for l in f if "No config file was loaded" not in l]
        for l in lines[-10:]:
            log("  side: " + l)
        if lines:
            err += " (%s)" % lines[-1][-200:]
        return None, err, killed
    with open(out, "rb") as f:
        span = int.from_bytes(f.read(8), "little")
        samples = array.array("Q")
        samples.frombytes(f.read())
    return (samples, span), "", killed


def run(args):
    suites = args.suites.split(",")
    if "shoal-python" in suites and not args.skip_check:
        ensure_shoal(args.install)
    ice_ok, ice_why = True, ""
    if "iceoryx2-python" in suites:
        try:
            import iceoryx2  # noqa: F401
            from importlib.metadata import version
            ice_ver = version("iceoryx2")
            log("iceoryx2 %s" % ice_ver)
        except Exception as e:  # not installed: say why in a row
            ice_ok, ice_why = False, "iceoryx2 not importable: %s (pip install iceoryx2)" % e
    payloads = [parse_size(p) for p in args.payloads.split(",")]
    modes = args.modes.split(",")
    patterns = args.patterns.split(",")
    jobs = []
    for suite in suites:
        for pattern in patterns:
            for mode in modes:
                for payload in payloads:
                    jobs.append((suite, pattern, mode, payload))
    cpus = cpus_str(args.cpu_a, args.cpu_b)
    if not args.no_header:
        print(HEADER, flush=True)
    pools = Pools(args.domain, args.runtime_dir) if "shoal-python" in suites else None
    acc = {j: {"samples": array.array("Q"), "span": 0, "err": "", "notes": []} for j in jobs}
    run_id = "%d-%d" % (os.getpid(), int(time.time()))
    tmpdir = tempfile.mkdtemp(prefix="pybench.")
    try:
        for rep in range(args.repeat):
            order = jobs if rep % 2 == 0 else list(reversed(jobs))
            for k, job in enumerate(order):
                suite, pattern, mode, payload = job
                a = acc[job]
                if a["err"]:
                    continue
                if suite == "iceoryx2-python" and not ice_ok:
                    continue
                per = args.iters // args.repeat
                iters = args.iters - per * (args.repeat - 1) if rep == args.repeat - 1 else per
                cfg = {"suite": suite, "pattern": pattern, "mode": mode, "payload": payload,
                       "iters": iters, "warmup": max(1, args.warmup // args.repeat),
                       "domain": args.domain, "runtime_dir": args.runtime_dir,
                       "name": "pybench.%s.r%d.%d.%s" % (run_id, rep, k, pattern)}
                if pools:
                    waited, busy = pools.wait_free(0.5)
                    if busy:
                        a["notes"].append("chunks in use before run: %s" % busy)
                res, err, killed = run_once(args, cfg, tmpdir)
                if killed and pools:
                    waited, busy = pools.wait_free(args.pool_wait)
                    msg = "killed %s; pools back after %.2f s" % (killed, waited) if not busy \
                        else "killed %s; still in use after %.1f s: %s" % (killed, waited, busy)
                    log(msg)
                    a["notes"].append(msg)
                if err:
                    a["err"] = err
                    log("%s %s %s %d: %s" % (suite, pattern, mode, payload, err))
                    continue
                a["samples"].extend(res[0])
                a["span"] += res[1]
        for job in jobs:
            suite, pattern, mode, payload = job
            a = acc[job]
            scale = 0.5 if pattern == "pubsub" else 1.0
            if suite == "iceoryx2-python" and not ice_ok:
                print(row(suite, pattern, mode, payload, 0, None, 0, cpus, "error: " + ice_why))
                continue
            notes = list(dict.fromkeys(a["notes"]))
            if a["err"]:
                print(row(suite, pattern, mode, payload, args.iters, None, 0, cpus,
                          "error: " + "; ".join([a["err"]] + notes)))
                continue
            st = stats(a["samples"], scale)
            n_msgs = len(a["samples"]) * (2 if pattern == "pubsub" else 1)
            tput = n_msgs / (a["span"] / 1e9) if a["span"] else 0.0
            extra = ["event service"] if suite == "iceoryx2-python" and mode == "block" else []
            note = ";".join((["runs=%d" % args.repeat] if args.repeat > 1 else []) + extra +
                            notes)
            print(row(suite, pattern, mode, payload, len(a["samples"]), st, tput, cpus, note),
                  flush=True)
    finally:
        if pools:
            pools.close()
        for f in os.listdir(tmpdir):
            os.unlink(os.path.join(tmpdir, f))
        os.rmdir(tmpdir)
    return 0


def pools_cmd(args):
    if not args.skip_check:
        ensure_shoal(args.install)
    p = Pools(args.domain, args.runtime_dir)
    try:
        if args.wait_pools is not None:
            waited, busy = p.wait_free(args.wait_pools)
            print("pools: %s after %.2f s" % ("all chunks free" if not busy else
                                             "still in use %s" % busy, waited))
            return 0 if not busy else 1
        for info in p.rt.pools():
            print("pool %d: chunk %d B x %d, in use %d, high water %d, failures %d" % (
                info.index, info.chunk_size, info.chunk_count, info.in_use, info.high_water,
                info.alloc_failures))
        return 0
    finally:
        p.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domain", default=os.environ.get("SHOAL_DOMAIN"))
    ap.add_argument("--runtime-dir", default=os.environ.get("SHOAL_RUNTIME_DIR"))
    ap.add_argument("--cpu-a", type=int, default=0)
    ap.add_argument("--cpu-b", type=int, default=1)
    ap.add_argument("--iters", type=int, default=20000)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--payloads", default="64,4K,1M")
    ap.add_argument("--modes", default="busy,block")
    ap.add_argument("--patterns", default="rr,pubsub")
    ap.add_argument("--suites", default="shoal-python,iceoryx2-python")
    ap.add_argument("--timeout", type=float, default=120.0, help="per run, then SIGKILL")
    ap.add_argument("--pool-wait", type=float, default=10.0,
                    help="after a kill: seconds to wait for the pools to be free")
    ap.add_argument("--install", action="store_true",
                    help="pip install the shoal package from this tree if missing or stale")
    ap.add_argument("--install-only", metavar="DIR",
                    help="pip install the shoal package of this tree into DIR (--target) and "
                         "exit; run.sh does it right after building shoald, so that both come "
                         "from the same sources, and puts DIR first on PYTHONPATH")
    ap.add_argument("--skip-check", action="store_true",
                    help="use the installed shoal package even if sources changed since")
    ap.add_argument("--no-header", action="store_true")
    ap.add_argument("--pools", action="store_true", help="print the pools and exit")
    ap.add_argument("--wait-pools", type=float, default=None,
                    help="wait up to S seconds until no chunk is in use; exit 1 if some are")
    ap.add_argument("--side", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        return side_main(args)
    if args.install_only:
        # always rebuilt: mtimes cannot tell which sources an installed copy came from
        target = args.install_only
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                            "--no-build-isolation", "--upgrade", "--target", target, ROOT],
                           stdout=sys.stderr, stderr=sys.stderr)
        if r.returncode != 0:
            raise SystemExit("python_bench: pip install --target %s %s failed" % (target, ROOT))
        log("shoal package installed in %s" % target)
        return 0
    if args.warmup is None:
        args.warmup = max(10, args.iters // 10)
    if args.cpu_a >= (os.cpu_count() or 1) or args.cpu_b >= (os.cpu_count() or 1):
        args.cpu_b = args.cpu_a = min(args.cpu_a, (os.cpu_count() or 1) - 1)
    if args.pools or args.wait_pools is not None:
        return pools_cmd(args)
    if not args.domain and "shoal-python" in args.suites:
        raise SystemExit("python_bench: --domain (or $SHOAL_DOMAIN) is required")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
