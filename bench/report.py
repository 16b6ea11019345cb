#!/usr/bin/env python3
"""Table, target check and plot for bench/results/latest.csv (bench/run.sh calls it).

    python3 bench/report.py bench/results/latest.csv [--plot out.png]
        [--markdown out.md] [--update-doc docs/performance.md] [--meta meta.txt]

Every row that is not a baseline gets two ratios of medians (same run):
  vs_raw      to the machine's limit with the same mode, pair count and CPU
              placement: busy -> cache-line ping-pong, block -> futex
              ping-pong; pub/sub rows (one-way) are divided by half of it.
  vs_iceoryx  to iceoryx's row with the same pattern, mode, payload and pairs
              (below 1 means faster than iceoryx); for shoal-python rows: to the
              iceoryx2-python row (the Python peer), not to iceoryx's C binding.
Python rows also get
  vs_C        to shoal's C row with the same pattern, mode, payload, pairs and
              placement (the cost of the binding; target <= 10x).
"""
import argparse
import csv
import math
import os
import re
import sys

BASE_SUITES = ("raw", "iceoryx")
# shown in tables of their own, shoal and iceoryx side by side (issue 15)
THROUGHPUT = ("fanout", "rr_k1", "rr_k8", "rr_k64", "services")
SCALE = ("port_create", "port_destroy", "service_create", "service_destroy", "sub_match",
         "port_memory_bytes")
PY_SUITES = ("shoal-python", "iceoryx2-python")
SUITE_ORDER = ["raw", "iceoryx", "shoal", "shoal-python", "iceoryx2-python"]


def fnum(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def size_name(b):
    b = int(b)
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if b >= (1 << shift) and b % (1 << shift) == 0:
            return f"{b >> shift}{unit}"
    return str(b)


NS_STEPS = ((1e6, 1e6, "{:.2f} ms"), (1e4, 1e3, "{:.1f} us"), (1e3, 1e3, "{:.2f} us"),
            (0, 1, "{:.0f} ns"))
RATE_STEPS = ((1e6, 1e6, "{:.2f} M/s"), (1e3, 1e3, "{:.1f} k/s"), (0, 1, "{:.0f}/s"))


def fmt_scaled(v, steps):
    """The first step whose threshold v reaches: (threshold, divisor, format)."""
    if v is None:
        return "-"
    limit, div, f = next((st for st in steps if v >= st[0]), steps[-1])
    return f.format(v / div)


def fmt_ns(v):
    return fmt_scaled(v, NS_STEPS)


def fmt_rate(v):
    return fmt_scaled(v, RATE_STEPS)


def fmt_throughput(r):
    """Messages per second; a fan-out of 1 MiB or more also in GB/s of
    payload delivered (every delivery counted)."""
    v = r["throughput_per_s"]
    if r["pattern"] == "fanout" and v and r["payload"] >= 1 << 20:
        return f"{fmt_rate(v)} ({v * r['payload'] / 1e9:.0f} GB/s)"
    return fmt_rate(v)


def placement(cpus):
    """'a=0;b=1;ncpu=2' -> 'a=0;b=1' (the key that must match)."""
    return ";".join(p for p in (cpus or "").split(";") if p.startswith(("a=", "b=")))


def load(path):
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("suite")]
    for r in rows:
        for k in ("median_ns", "p99_ns", "p999_ns", "max_ns", "throughput_per_s"):
            r[k] = fnum(r.get(k))
        r["payload"] = int(fnum(r.get("payload")) or 0)
        r["pairs"] = int(fnum(r.get("pairs")) or 0)
    return rows


def raw_limit(rows, mode, pairs, cpus):
    """Lowest raw ping-pong median with this mode, pair count and placement
    (run.sh measures the raw limit before and after the other suites)."""
    meds = [r["median_ns"] for r in rows
            if r["suite"] == "raw" and r["pattern"] == "pingpong" and r["mode"] == mode
            and r["pairs"] == pairs and placement(r["cpus"]) == placement(cpus)
            and r["median_ns"] is not None]
    return min(meds) if meds else None


def find(rows, suite, pattern, mode, payload, pairs, cpus=None):
    """The row with these keys; cpus=None: the default placement (a=0;b=1) if
    there is one, else any."""
    hits = [r for r in rows
            if r["suite"] == suite and r["pattern"] == pattern and r["mode"] == mode
            and r["payload"] == payload and r["pairs"] == pairs]
    if cpus is not None:
        hits = [r for r in hits if placement(r["cpus"]) == placement(cpus)]
    else:
        pref = [r for r in hits if placement(r["cpus"]) == "a=0;b=1"]
        hits = pref or hits
    return hits[0] if hits else None


def ratios(rows, r):
    vs_raw = vs_ice = None
    if r["median_ns"] is None or r["suite"] in BASE_SUITES and r["suite"] != "iceoryx":
        return None, None
    # block with several pairs: the raw futex ping-pong of 4 pairs on 2 cores
    # mostly finds the word already changed and never sleeps (bimodal, 0.4-60
    # us), so it is no limit for a blocking IPC: no ratio (docs/performance.md)
    if r["pattern"] in ("rr", "pubsub") and not (r["mode"] == "block" and r["pairs"] > 1):
        lim = raw_limit(rows, r["mode"], r["pairs"], r["cpus"])
        if lim:
            vs_raw = r["median_ns"] / (lim / 2 if r["pattern"] == "pubsub" else lim)
    peer = {"iceoryx": None, "iceoryx2-python": None, "shoal-python": "iceoryx2-python"}.get(
        r["suite"], "iceoryx")
    if peer:
        ice = find(rows, peer, r["pattern"], r["mode"], r["payload"], r["pairs"], r["cpus"])
        if ice and ice["median_ns"]:
            vs_ice = r["median_ns"] / ice["median_ns"]
    return vs_raw, vs_ice


def vs_c(rows, r):
    """Python rows: median / shoal's C median of the same configuration."""
    if r["suite"] not in PY_SUITES or r["median_ns"] is None:
        return None
    c = find(rows, "shoal", r["pattern"], r["mode"], r["payload"], r["pairs"], r["cpus"])
    return r["median_ns"] / c["median_ns"] if c and c["median_ns"] else None


def short_note(note, n=60):
    """Notes are cut, but an error is what the row says: kept whole."""
    note = note or ""
    return note if len(note) <= n or note.startswith("error:") else note[: n - 3] + "..."


def cell_fmt(r):
    """Formatter of a row's latency columns: bytes for *_bytes rows."""
    if r["pattern"].endswith("_bytes"):
        return lambda v: "-" if v is None else f"{v:.0f} B"
    return fmt_ns


def table(rows):
    out = []
    head = ["suite", "pattern", "mode", "payload", "pairs", "cpus", "median", "p99", "p99.9",
            "max", "throughput", "vs raw", "vs iceoryx", "vs C", "note"]
    order = {s: i for i, s in enumerate(SUITE_ORDER)}
    for r in sorted(rows, key=lambda r: order.get(r["suite"], 99)):
        if r["pattern"] in THROUGHPUT + SCALE:
            continue
        vs_raw, vs_ice = ratios(rows, r)
        lat = cell_fmt(r)
        out.append([
            r["suite"], r["pattern"], r["mode"], size_name(r["payload"]) if r["payload"] else "-",
            str(r["pairs"]), placement(r["cpus"]).replace(";", ",") or "-", lat(r["median_ns"]), lat(r["p99_ns"]), lat(r["p999_ns"]),
            lat(r["max_ns"]), fmt_throughput(r),
            "-" if vs_raw is None else f"{vs_raw:.2f}x",
            "-" if vs_ice is None else f"{vs_ice:.2f}x",
            "-" if vs_c(rows, r) is None else f"{vs_c(rows, r):.1f}x",
            short_note(r["note"]),
        ])
    return head, out


def iceoryx_peer(rows, r):
    """iceoryx's row for shoal's row r: same pattern, mode, payload and pairs
    (a destroy row without one: its create row, which says why);
    port_memory_bytes: same pattern (iceoryx makes fewer ports)."""
    peer = find(rows, "iceoryx", r["pattern"], r["mode"], r["payload"], r["pairs"])
    if peer is None and r["pattern"].endswith("_destroy"):  # no create, no destroy
        peer = find(rows, "iceoryx", r["pattern"].replace("_destroy", "_create"), r["mode"],
                    r["payload"], r["pairs"])
    if peer is None and r["pattern"] == "port_memory_bytes":
        peer = next((x for x in rows if x["suite"] == "iceoryx" and x["pattern"] == r["pattern"]),
                    None)
    return peer


def side_by_side(rows, patterns):
    """shoal's rows of these patterns next to iceoryx's of the same
    configuration; where iceoryx has no number, its note says why."""
    head = ["pattern", "mode", "payload", "pairs", "shoal median", "p99", "p99.9", "throughput",
            "iceoryx median", "p99", "p99.9", "throughput", "median vs iceoryx",
            "throughput vs iceoryx", "note"]
    body = []
    for r in rows:
        if r["suite"] != "shoal" or r["pattern"] not in patterns:
            continue
        ice = iceoryx_peer(rows, r) or {"median_ns": None, "p99_ns": None, "p999_ns": None,
                                         "throughput_per_s": None, "note": "error: no iceoryx row",
                                         "pattern": r["pattern"], "payload": r["payload"]}
        lat = cell_fmt(r)
        ratio = lambda a, b: "-" if not a or not b else f"{a / b:.2f}x"
        note = short_note(r["note"])
        if ice["median_ns"] is None:
            note = (note + "; " if note else "") + "iceoryx: " + (ice["note"] or "no number")
        body.append([
            r["pattern"], r["mode"], size_name(r["payload"]) if r["payload"] else "-",
            str(r["pairs"]), lat(r["median_ns"]), lat(r["p99_ns"]), lat(r["p999_ns"]),
            fmt_throughput(r), lat(ice["median_ns"]), lat(ice["p99_ns"]), lat(ice["p999_ns"]),
            fmt_throughput(ice) if ice["median_ns"] is not None else "-",
            ratio(r["median_ns"], ice["median_ns"]),
            "-" if r["pattern"].endswith("_bytes") else ratio(r["throughput_per_s"],
                                                             ice["throughput_per_s"]),
            note,
        ])
    return head, body


def print_table(head, body):
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h)
              for i, h in enumerate(head)]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths))
    print(line)
    print("-" * len(line))
    for row in body:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))


def markdown(head, body):
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in body:
        lines.append("| " + " | ".join(c.replace("|", "/") for c in row) + " |")
    return "\n".join(lines)


def note_value(r, key):
    m = re.search(re.escape(key) + r"=([0-9.]+)", (r or {}).get("note") or "")
    return float(m.group(1)) if m else None


def targets(rows):
    """The issue's targets, evaluated on what this run measured."""
    res = []

    def add(name, value, limit, ok, detail):
        res.append((name, "PASS" if ok else "MISS", value, limit, detail))

    def med(suite, pattern, mode, payload=64, pairs=1):
        r = find(rows, suite, pattern, mode, payload, pairs)
        return r["median_ns"] if r else None

    s_busy, s_block = med("shoal", "rr", "busy"), med("shoal", "rr", "block")
    i_busy = med("iceoryx", "rr", "busy")
    cpus = next((r["cpus"] for r in rows if r["suite"] == "shoal"), "a=0;b=1")
    raw_busy, raw_futex = raw_limit(rows, "busy", 1, cpus), raw_limit(rows, "block", 1, cpus)
    if s_busy and raw_busy:
        add("busy rr 64 B <= 2x raw cache-line RTT", f"{s_busy / raw_busy:.2f}x", "2.00x",
            s_busy <= 2 * raw_busy, f"{fmt_ns(s_busy)} vs {fmt_ns(raw_busy)}")
    if s_busy and i_busy:
        add("busy rr 64 B >= 2x faster than iceoryx", f"{i_busy / s_busy:.2f}x faster", "2.00x",
            i_busy >= 2 * s_busy, f"{fmt_ns(s_busy)} vs {fmt_ns(i_busy)}")
    if s_block and raw_futex:
        add("blocking rr 64 B <= 1.3x raw futex RTT", f"{s_block / raw_futex:.2f}x", "1.30x",
            s_block <= 1.3 * raw_futex, f"{fmt_ns(s_block)} vs {fmt_ns(raw_futex)}")
    same = find(rows, "shoal", "rr", "block", 64, 1, "a=0;b=0")
    raw_same = raw_limit(rows, "block", 1, "a=0;b=0")
    if same and same["median_ns"] and raw_same:
        v = same["median_ns"]
        add("blocking rr 64 B, both sides on one CPU, <= 1.3x raw futex (same CPU)",
            f"{v / raw_same:.2f}x", "1.30x", v <= 1.3 * raw_same,
            f"{fmt_ns(v)} vs {fmt_ns(raw_same)}")
    for mode in ("busy", "block"):
        big, small = med("shoal", "rr", mode, 1 << 30), med("shoal", "rr", mode)
        if big and small:
            add(f"{mode} rr 1 GiB <= 1.2x 64 B", f"{big / small:.2f}x", "1.20x",
                big <= 1.2 * small, f"{fmt_ns(big)} vs {fmt_ns(small)}")
    for mode, c in (("busy", s_busy), ("block", s_block)):
        py = med("shoal-python", "rr", mode)
        if py and c:
            add(f"Python rr 64 B ({mode}) <= 10x C rr", f"{py / c:.2f}x", "10.00x",
                py <= 10 * c, f"{fmt_ns(py)} vs {fmt_ns(c)}")
        ipy = med("iceoryx2-python", "rr", mode)
        if py and ipy:
            add(f"Python rr 64 B ({mode}) faster than iceoryx2's Python",
                f"{ipy / py:.2f}x faster" if py <= ipy else f"{py / ipy:.2f}x slower", "1.00x",
                py < ipy, f"{fmt_ns(py)} vs {fmt_ns(ipy)}")
    cr = next((r for r in rows if r["suite"] == "shoal" and r["pattern"] == "server_create"), None)
    total = note_value(cr, "create_total_ms")
    if total is not None:
        add(f"create {cr['pairs']} servers < 50 ms", f"{total:.1f} ms", "50 ms", total < 50, "")
    for r in rows:  # per-port cost of the create/destroy rows: first group vs last
        m = re.search(r"first(\d+)_mean_us=([0-9.]+);last\d+_mean_us=([0-9.]+)", r["note"] or "")
        if r["suite"] != "shoal" or not m or not float(m.group(2)):
            continue
        k, first, last = m.group(1), float(m.group(2)), float(m.group(3))
        what = "port creation" if r["pattern"] == "server_create" else r["pattern"]
        add(f"{what} cost does not grow (last {k} / first {k}, {r['pairs']})",
            f"{last / first:.2f}x", "<= 1.5x", last <= 1.5 * first,
            f"{first:.1f} us -> {last:.1f} us")
    return res


COLORS = {"iceoryx": "tab:orange", "shoal": "tab:blue", "shoal-python": "tab:green",
          "iceoryx2-python": "tab:red"}


def plot_latency(ax, rows, pattern, mode):
    for suite in [s for s in SUITE_ORDER if s != "raw"] + sorted(
            {r["suite"] for r in rows} - set(SUITE_ORDER)):
        for pairs, style in ((1, "-o"), (4, "--s")):
            pts = sorted((r["payload"], r["median_ns"]) for r in rows
                         if r["suite"] == suite and r["pattern"] == pattern
                         and r["mode"] == mode and r["pairs"] == pairs
                         and placement(r["cpus"]) == "a=0;b=1"
                         and r["median_ns"] is not None)
            if pts:
                ax.plot([p for p, _ in pts], [v / 1e3 for _, v in pts], style,
                        color=COLORS.get(suite), label=f"{suite}, {pairs} pair(s)")
    for pairs, ls in ((1, ":"), (4, "-.")):
        if mode == "block" and pairs > 1:
            continue  # no limit for blocking 4 pairs (see ratios())
        lim = raw_limit(rows, mode, pairs, "a=0;b=1")
        if lim:
            lim = lim / 2 if pattern == "pubsub" else lim
            ax.axhline(lim / 1e3, color="black", ls=ls, lw=1,
                       label=f"raw {'cache line' if mode == 'busy' else 'futex'}, {pairs} pair(s)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    what = "round trip" if pattern == "rr" else "one-way (ping-pong / 2)"
    ax.set_title(f"{'request/response' if pattern == 'rr' else 'publish/subscribe'}, "
                 f"{'busy poll' if mode == 'busy' else 'blocking wait'}: median {what}")
    ax.set_ylabel("latency [us]")
    ax.set_xlabel("payload [bytes] (only first and last byte touched)")
    ax.set_xticks([64, 4096, 1 << 20, 64 << 20, 1 << 30])
    ax.set_xticklabels(["64 B", "4 KiB", "1 MiB", "64 MiB", "1 GiB"])


def series(rows, suite, mode, key, patterns, payload=64):
    """(x, row) of a throughput pattern family: fan-out by subscribers,
    rr_kK by K."""
    pts = []
    for r in rows:
        if (r["suite"] == suite and r["mode"] == mode and r["pattern"] in patterns
                and r["payload"] == payload and r["median_ns"] is not None):
            pts.append((key(r), r))
    return sorted(pts, key=lambda p: p[0])


def plot_family(ax_rate, ax_lat, rows, patterns, key, xlabel, title, payloads=(64,)):
    """Throughput (left) and latency (right: median line, band to p99,
    x at p99.9) of one throughput family, shoal and iceoryx, both modes."""
    ticks = sorted({x for suite in ("shoal", "iceoryx") for mode in ("busy", "block")
                    for x, _ in series(rows, suite, mode, key, patterns)})
    for suite in ("shoal", "iceoryx"):
        for mode, marker in (("busy", "o"), ("block", "s")):
            for payload in payloads:
                pts = series(rows, suite, mode, key, patterns, payload)
                if not pts:
                    continue
                xs = [x for x, _ in pts]
                ls = "-" if payload == payloads[0] else "--"
                lab = f"{suite}, {mode}" + (f", {size_name(payload)}" if len(payloads) > 1 else "")
                ax_rate.plot(xs, [r["throughput_per_s"] / 1e6 for _, r in pts], ls + marker,
                             color=COLORS[suite], label=lab, mfc="none" if mode == "block" else None)
                if payload != payloads[0]:
                    continue
                med = [r["median_ns"] / 1e3 for _, r in pts]
                ax_lat.plot(xs, med, "-" + marker, color=COLORS[suite], label=f"{suite}, {mode}",
                            mfc="none" if mode == "block" else None)
                ax_lat.fill_between(xs, med, [r["p99_ns"] / 1e3 for _, r in pts],
                                    color=COLORS[suite], alpha=0.12)
                ax_lat.plot(xs, [r["p999_ns"] / 1e3 for _, r in pts], "x", color=COLORS[suite])
    for ax in (ax_rate, ax_lat):
        ax.set_xscale("log", base=2)
        if ticks:
            ax.set_xticks(ticks)
            ax.set_xticklabels([str(t) for t in ticks])
        ax.set_xlabel(xlabel)
        ax.grid(True, which="both", alpha=0.3)
    ax_rate.set_ylabel("messages/s [M]")
    ax_rate.set_title(f"{title}: throughput")
    ax_lat.set_yscale("log")
    ax_lat.set_ylabel("latency [us]")
    ax_lat.set_title(f"{title}: median (line), to p99 (band), p99.9 (x)")


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 2, figsize=(13, 18))
    for ax, (pattern, mode) in zip(axes.flat, [("rr", "busy"), ("rr", "block"),
                                               ("pubsub", "busy"), ("pubsub", "block")]):
        plot_latency(ax, rows, pattern, mode)
    plot_family(axes[2][0], axes[2][1], rows, ("fanout",), lambda r: r["pairs"],
                "subscribers", "fan-out 1 -> N (deliveries)", payloads=(64, 1 << 20))
    plot_family(axes[3][0], axes[3][1], rows, ("rr_k1", "rr_k8", "rr_k64"),
                lambda r: int(r["pattern"][4:]), "requests in flight (k)",
                "request/response, k in flight")
    for suite in ("shoal", "iceoryx"):  # 1,000 services next to k = 1
        for mode, ls in (("busy", "-."), ("block", ":")):
            r = find(rows, suite, "services", mode, 64, 1000)
            if r and r["median_ns"]:
                axes[3][1].axhline(r["median_ns"] / 1e3, color=COLORS[suite], ls=ls, lw=1,
                                   label=f"{suite}, {mode}: 1,000 services, median")
    for ax in axes.flat:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("shoal (C, Python) vs iceoryx 2.0.3 (C) and iceoryx2 (Python) vs the machine's "
                 "limit (same run; 2-core VM)")
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--plot")
    ap.add_argument("--markdown")
    ap.add_argument("--update-doc")
    ap.add_argument("--meta")
    a = ap.parse_args()
    rows = load(a.csv)
    head, body = table(rows)
    print_table(head, body)
    extra = []
    for title, patterns in (("Throughput", THROUGHPUT), ("Scale", SCALE)):
        h, b = side_by_side(rows, patterns)
        if b:
            print(f"\n{title} (shoal next to iceoryx, same run):")
            print_table(h, b)
            extra.append(f"\n\n{title}, shoal next to iceoryx (same run):\n\n" + markdown(h, b))
    res = targets(rows)
    if res:
        print("\ntargets (issue 6):")
        for name, verdict, value, limit, detail in res:
            print(f"  {verdict:4}  {name}: {value} (limit {limit}) {detail}")
    md = markdown(head, body) + "".join(extra)
    if res:
        md += "\n\nTargets (issue 6), this run:\n\n| target | result | value | limit | detail |\n|---|---|---|---|---|\n"
        md += "\n".join(f"| {n} | {v} | {val} | {lim} | {d} |" for n, v, val, lim, d in res)
    meta = ""
    if a.meta and os.path.exists(a.meta):
        with open(a.meta) as f:
            meta = f.read().strip()
        md = "Run: \n\n```\n" + meta + "\n```\n\n" + md
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(md + "\n")
    if a.plot:
        try:
            plot(rows, a.plot)
            print(f"\nplot: {a.plot}")
        except Exception as e:  # a missing plot must not lose the table
            print(f"\nplot failed: {e}", file=sys.stderr)
    if a.update_doc and os.path.exists(a.update_doc):
        with open(a.update_doc) as f:
            doc = f.read()
        begin, end = "<!-- bench:table:begin -->", "<!-- bench:table:end -->"
        if begin in doc and end in doc:
            pre, rest = doc.split(begin, 1)
            _, post = rest.split(end, 1)
            with open(a.update_doc, "w") as f:
                f.write(pre + begin + "\n" + md + "\n" + end + post)
            print(f"updated the table in {a.update_doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
