"""Counts what tests/run_all.sh ran, from the JUnit files of ctest and pytest.

    python3 tests/summarize.py [--labels=FILE] ENTRY...

    ctest:NAME=FILE       a ctest JUnit file (ctest --output-junit)
    pytest:NAME=FILE      a pytest JUnit file (pytest --junitxml)
    plain:NAME=N=TEXT     N tests passed, described by TEXT (soak, fuzz harnesses, ...)
    --labels=FILE         lines "test:label;label" naming each ctest test's labels

A ctest entry is one test program; inside it this counts what its own runner reports
(cmocka cases, pytest tests, cargo tests, C++ and Java checks), grouped by the ctest
label that names the suite (c, cpp, java, python, rust, install, ...). Prints one line
per suite and a closing "total: N passed, N failed, N skipped" line.
"""

import re
import sys
import xml.etree.ElementTree as ET

# ctest labels, most specific first: the first one a test carries names its suite
LABEL_ORDER = ["gateway", "rust", "java", "python", "cpp", "install", "c"]

INNER = [
    ("cmocka cases", re.compile(r"\[  PASSED  \] (\d+) test"), None),
    ("cargo tests", re.compile(r"test result: ok\. (\d+) passed"), None),
    ("pytest tests", re.compile(r"=* ?(\d+) passed"), re.compile(r"(\d+) skipped")),
    ("checks", re.compile(r"(\d+) of \d+ tests passed"), None),
    ("checks", re.compile(r"OK \((\d+) checks\)"), None),
]


def inner_counts(out):
    """(what, passed, skipped) reported by a test program's own runner, or None."""
    for what, pat, skip_pat in INNER:
        found = pat.findall(out)
        if found:
            passed = sum(int(n) for n in found) if what == "cargo tests" else int(found[-1])
            skipped = 0
            if skip_pat:
                s = skip_pat.findall(out)
                skipped = int(s[-1]) if s else 0
            return what, passed, skipped
    return None


def read_ctest(path, labels):
    """{suite: {"programs", "failed", "notrun", "tests", "skipped", "inner": {what: n}}}"""
    suites = {}
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        name = case.get("name")
        status = case.get("status", "run")
        failed = case.find("failure") is not None or case.find("error") is not None
        tl = labels.get(name, [])
        suite = next((lab for lab in LABEL_ORDER if lab in tl), "other")
        s = suites.setdefault(suite, {"programs": 0, "failed": 0, "notrun": 0, "tests": 0,
                                      "skipped": 0, "inner": {}})
        if status in ("notrun", "disabled") or case.find("skipped") is not None:
            s["notrun"] += 1
            continue
        s["programs"] += 1
        if failed:
            s["failed"] += 1
            continue
        got = inner_counts(case.findtext("system-out") or "")
        if got:  # the program's own count of its tests
            what, passed, sk = got
            s["inner"][what] = s["inner"].get(what, 0) + passed
            s["tests"] += passed
            s["skipped"] += sk
        else:  # a program that does not count its tests is one test
            s["tests"] += 1
    return suites


def read_pytest(path):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    t = f = e = sk = 0
    for s in suites:
        t += int(s.get("tests", 0))
        f += int(s.get("failures", 0))
        e += int(s.get("errors", 0))
        sk += int(s.get("skipped", 0))
    return t - f - e - sk, f + e, sk


def main(argv):
    labels = {}
    passed = failed = skipped = 0
    lines = []
    for arg in argv:
        if arg.startswith("--labels="):
            with open(arg.split("=", 1)[1], encoding="utf-8") as fh:
                for line in fh:
                    name, _, labs = line.rstrip("\n").partition(":")
                    labels[name] = [x for x in labs.split(";") if x]
            continue
        kind, _, rest = arg.partition(":")
        name, _, value = rest.partition("=")
        try:
            if kind == "ctest":
                for suite, s in sorted(read_ctest(value, labels).items()):
                    detail = ", ".join("%d %s" % (n, what) for what, n in s["inner"].items())
                    lines.append("  %-24s %d passed, %d failed, %d skipped  (%d programs%s%s)" % (
                        "%s [%s]" % (name, suite), s["tests"], s["failed"],
                        s["skipped"] + s["notrun"], s["programs"],
                        "; " + detail if detail else "",
                        "; %d not run" % s["notrun"] if s["notrun"] else ""))
                    passed += s["tests"]
                    failed += s["failed"]
                    skipped += s["skipped"] + s["notrun"]
            elif kind == "pytest":
                p, f, sk = read_pytest(value)
                lines.append("  %-24s %d passed, %d failed, %d skipped" % (name, p, f, sk))
                passed, failed, skipped = passed + p, failed + f, skipped + sk
            elif kind == "plain":
                n, _, text = value.partition("=")
                lines.append("  %-24s %s passed  (%s)" % (name, n, text))
                passed += int(n)
            else:
                lines.append("  %-24s ? (unknown entry %r)" % (name, arg))
        except (OSError, ET.ParseError) as exc:
            lines.append("  %-24s no results (%s)" % (name, exc))
            failed += 1
    print("tests run, per suite:")
    print("\n".join(lines))
    print("total: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
