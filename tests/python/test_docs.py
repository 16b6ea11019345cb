"""Every ```python block of README.md and docs/python.md runs.

Each block runs in a fresh Python process against a real shoald: $SHOAL_DOMAIN and
$SHOAL_RUNTIME_DIR name the session daemon (the plugin's shoal_daemon), so
``shoal.Runtime()`` finds it and a ``shoal.Daemon`` the block starts puts its socket in
that private directory. A block must exit 0 without a ResourceWarning (a chunk released
by the garbage collector is a bug in an example).

The HTML comment on the line before a block's fence says how to treat it:
  (none)                        run it as a script
  <!-- run: pytest -->          it is a test file: run pytest on it (with the plugin, in a
                                session of its own); every test must pass
  <!-- not run: REASON -->      a fragment on purpose: skipped, REASON shown
  <!-- not run: needs branch async -->
                                the asyncio API of call_async / ``async for``: run as soon
                                as shoal has it, skipped before
A marker that precedes no ```python block is an error, as is a block that does not run.
"""

import os
import re
import subprocess
import sys

import pytest

import shoal
import shoal_workers

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
DOCS = ["README.md", os.path.join("docs", "python.md")]

_FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
_MARKER = re.compile(r"^\s*<!--\s*(not run|run)\s*:\s*(.*?)\s*-->\s*$")
BLOCK_TIMEOUT = 120


class Block:
    def __init__(self, doc, line, code, mode, reason):
        self.doc, self.line, self.code, self.mode, self.reason = doc, line, code, mode, reason

    @property
    def id(self):
        return "%s:%d" % (self.doc, self.line)


def extract(doc):
    """The fenced blocks of `doc` (path relative to ROOT): (python blocks, problems)."""
    with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
        lines = f.read().splitlines()
    blocks, problems = [], []
    pending = None   # (line number, kind, text) of a marker waiting for its block
    i = 0
    while i < len(lines):
        m = _MARKER.match(lines[i])
        if m:
            if pending:
                problems.append("%s:%d: marker not followed by a ```python block"
                                % (doc, pending[0]))
            pending = (i + 1, m.group(1), m.group(2))
            i += 1
            continue
        fence = _FENCE.match(lines[i])
        if not fence:
            if lines[i].strip() and pending:
                problems.append("%s:%d: marker not followed by a ```python block"
                                % (doc, pending[0]))
                pending = None
            i += 1
            continue
        indent, lang = fence.group(1), fence.group(2)
        start = i + 1
        j = start
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        if j == len(lines):
            problems.append("%s:%d: unterminated ``` block" % (doc, i + 1))
            break
        body = [line[len(indent):] if line.startswith(indent) else line.lstrip()
                for line in lines[start:j]]
        if lang == "python":
            mode, reason = "script", ""
            if pending:
                kind, text = pending[1], pending[2]
                if kind == "run" and text == "pytest":
                    mode = "pytest"
                elif kind == "not run" and text:
                    mode, reason = "not run", text
                else:
                    problems.append("%s:%d: unknown marker (use <!-- not run: reason --> or "
                                    "<!-- run: pytest -->)" % (doc, pending[0]))
            blocks.append(Block(doc, i + 1, "\n".join(body) + "\n", mode, reason))
        elif pending:
            problems.append("%s:%d: marker before a ```%s block, not ```python"
                            % (doc, pending[0], lang))
        pending = None
        i = j + 1
    if pending:
        problems.append("%s:%d: marker at the end of the file" % (doc, pending[0]))
    return blocks, problems


ALL = [b for doc in DOCS for b in extract(doc)[0]]


def _has_async_api():
    return hasattr(shoal.Client, "call_async") and hasattr(shoal.Subscriber, "__aiter__")


def _env(shoal_daemon):
    env = shoal_workers.child_env()
    env["SHOAL_DOMAIN"] = shoal_daemon.domain
    env["SHOAL_RUNTIME_DIR"] = shoal_daemon.runtime_dir
    return env


def test_markers_and_blocks_are_well_formed():
    problems = [p for doc in DOCS for p in extract(doc)[1]]
    assert not problems, "\n".join(problems)
    # the test cannot pass by finding nothing
    per_doc = {doc: [b for b in ALL if b.doc == doc] for doc in DOCS}
    assert len(per_doc["README.md"]) >= 1, per_doc
    assert len([b for b in per_doc[DOCS[1]] if b.mode != "not run"]) >= 15, per_doc


def test_blocks_waiting_for_the_async_api_compile():
    waiting = [b for b in ALL if b.mode == "not run" and b.reason == "needs branch async"]
    for block in waiting:
        compile(block.code, block.id, "exec")


def test_the_extractor(tmp_path):
    """Markers, fragments and the problems the extractor reports."""
    doc = tmp_path / "doc.md"
    doc.write_text(
        "text\n\n"
        "```python\nprint(1)\n```\n\n"
        "<!-- not run: a fragment -->\n```python\nx.send()\n```\n\n"
        "<!-- run: pytest -->\n```python\ndef test_x():\n    pass\n```\n\n"
        "- a list item:\n\n  ```python\n  print(2)\n  ```\n\n"
        "<!-- not run: stray -->\nsome text\n\n"
        "<!-- not run: before c -->\n```c\nint x;\n```\n"
        "```sh\nls\n```\n")
    blocks, problems = extract(str(doc))
    assert [(b.line, b.mode, b.reason, b.code) for b in blocks] == [
        (3, "script", "", "print(1)\n"),
        (8, "not run", "a fragment", "x.send()\n"),
        (13, "pytest", "", "def test_x():\n    pass\n"),
        (20, "script", "", "print(2)\n"),
    ], [(b.line, b.mode, b.reason, b.code) for b in blocks]
    assert len(problems) == 2 and "marker not followed" in problems[0] \
        and "not ```python" in problems[1], problems


@pytest.mark.parametrize("block", ALL, ids=[b.id for b in ALL])
def test_block_runs(block, shoal_daemon, tmp_path):
    if block.mode == "not run":
        if not (block.reason == "needs branch async" and _has_async_api()):
            pytest.skip("%s: not run: %s" % (block.id, block.reason))
    if "numpy" in block.code:
        pytest.importorskip("numpy")
    env = _env(shoal_daemon)
    if block.mode == "pytest":
        path = tmp_path / "test_doc_block.py"
        path.write_text(block.code)
        for key in ("SHOAL_DOMAIN", "SHOAL_RUNTIME_DIR"):
            env.pop(key, None)   # its session starts a daemon of its own
        args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "--rootdir", str(tmp_path)] + _plugin_args() + [str(path)]
    else:
        path = tmp_path / "doc_block.py"
        path.write_text(block.code)
        args = [sys.executable, "-W", "always::ResourceWarning", str(path)]
    try:
        out = subprocess.run(args, cwd=str(tmp_path), env=env, capture_output=True,
                             text=True, timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail("%s did not finish within %d s\n%s%s" % (
            block.id, BLOCK_TIMEOUT, e.stdout or "", e.stderr or ""), pytrace=False)
    text = "%s (%s) exited %d\n--- code\n%s--- stdout\n%s--- stderr\n%s" % (
        block.id, block.mode, out.returncode, block.code, out.stdout, out.stderr)
    assert out.returncode == 0, text
    assert "ResourceWarning" not in out.stderr, text
    assert "Traceback" not in out.stderr, text


def _plugin_args():
    from test_plugin import _plugin_args as args
    return args()


def test_guide_names_every_public_name():
    with open(os.path.join(ROOT, DOCS[1]), encoding="utf-8") as f:
        guide = f.read()
    missing = [name for name in shoal.__all__
               if not re.search(r"`(shoal\.)?%s[`(.\s]" % re.escape(name), guide)]
    assert not missing, "docs/python.md does not name: %s" % ", ".join(missing)
