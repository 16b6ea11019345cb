#!/usr/bin/env python3
"""Every binding knows every result code of shoal.h, and every version string is
the header's (ctest: abi_lists).

The header's `enum shoal_result` is the one list of result codes; this check fails
when a code is missing from (or unknown to) shoal_strerror(), the Python error
classes, the C++ Errc enum, the Rust ErrorCode table or the Java constants. The
header's SHOAL_VERSION_MAJOR/MINOR/PATCH is the one version; Cargo.toml (which
cannot read it) must agree, and pyproject.toml must not carry a version of its own.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return f.read()


def header_codes(text):
    body = re.search(r"typedef enum shoal_result \{(.*?)\} shoal_result_t;", text, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    codes = dict((m.group(1), int(m.group(2)))
                 for m in re.finditer(r"\b(SHOAL_(?:OK|ERR_\w+))\s*=\s*(\d+)", body))
    if "SHOAL_OK" not in codes or len(codes) < 2:
        sys.exit("could not read enum shoal_result from capi/include/shoal.h")
    return codes


def main():
    problems = []
    header = read("capi/include/shoal.h")
    codes = header_codes(header)
    errs = {n: v for n, v in codes.items() if n != "SHOAL_OK"}

    def names_in(rel, pattern):
        return set(re.findall(pattern, read(rel)))

    def compare(what, found, expected):
        for n in sorted(expected - found):
            problems.append("%s lacks %s (= %d)" % (what, n, codes[n]))
        for n in sorted(found - expected):
            problems.append("%s names %s, which capi/include/shoal.h does not define" % (what, n))

    expected = set(errs)
    compare("shoal_strerror (capi/src/core/error.c)",
            names_in("capi/src/core/error.c", r"case (SHOAL_ERR_\w+):"), expected)
    compare("C++ shoal::Errc (bindings/cpp/include/shoal.hpp)",
            names_in("bindings/cpp/include/shoal.hpp", r"=\s*(SHOAL_ERR_\w+),"), expected)
    compare("Rust CODES (bindings/rust/shoal/src/lib.rs)",
            names_in("bindings/rust/shoal/src/lib.rs", r"\(sys::(SHOAL_ERR_\w+),"), expected)
    compare("Java ShoalException (swig/java/src/io/shoal/ShoalException.java)",
            names_in("swig/java/src/io/shoal/ShoalException.java", r"shoal_result_t\.(SHOAL_ERR_\w+)"),
            expected)
    # Python: one class per code value (the classes carry `code = N`).
    py = read("python/shoal/errors.py")
    py_codes = {}
    for m in re.finditer(r"^class (\w+)\(.*?\):\n(?:    .*\n|\n)*?    code = (\d+)", py, re.M):
        py_codes.setdefault(int(m.group(2)), []).append(m.group(1))
    by_value = {v: n for n, v in errs.items()}
    for v, n in sorted(by_value.items()):
        if v not in py_codes:
            problems.append("python/shoal/errors.py has no error class with code = %d (%s)" % (v, n))
    for v, classes in sorted(py_codes.items()):
        if v not in by_value:
            problems.append("python/shoal/errors.py: %s has code = %d, which capi/include/shoal.h "
                            "does not define" % (", ".join(classes), v))
        elif len(classes) > 1:
            problems.append("python/shoal/errors.py: code %d has several classes: %s"
                            % (v, ", ".join(classes)))

    # Versions
    version = ".".join(re.search(r"^#define SHOAL_VERSION_%s (\d+)$" % p, header, re.M).group(1)
                       for p in ("MAJOR", "MINOR", "PATCH"))
    cargo = re.search(r'^\[workspace\.package\]\n(?:.*\n)*?version = "([^"]+)"',
                      read("bindings/rust/Cargo.toml"), re.M)
    if not cargo or cargo.group(1) != version:
        problems.append("bindings/rust/Cargo.toml: [workspace.package] version is %s, shoal.h says %s"
                        % (cargo.group(1) if cargo else "missing", version))
    for name, v in re.findall(r'name = "(shoal(?:-sys)?)"\nversion = "([^"]+)"',
                              read("bindings/rust/Cargo.lock")):
        if v != version:
            problems.append("bindings/rust/Cargo.lock: %s %s, shoal.h says %s" % (name, v, version))
    if re.search(r'^version\s*=', read("pyproject.toml"), re.M):
        problems.append("pyproject.toml has a version of its own: it must be dynamic "
                        "(setup.py reads capi/include/shoal.h)")

    if problems:
        print("result codes / versions out of step with capi/include/shoal.h:")
        for p in problems:
            print("  - " + p)
        return 1
    print("%d result codes in every binding; version %s everywhere" % (len(errs), version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
