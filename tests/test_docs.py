"""Every Python code block of the documentation's pages runs as printed.

A page is ``docs/*.rst`` or ``docs/user_guide/*.rst`` (files whose name starts
with ``_`` are not pages: they are read where a page includes them with
``.. include::``). Each page with Python code is one test, run in a fresh
Python process (a new user's session: nothing left from another page, and a
page that starts a Dask cluster or an accelerator leaves nothing behind), in
an empty working directory, with its blocks executed in page order in one
namespace.

Which blocks run:

- ``.. code-block:: python`` (or ``pycon``, ``py``): a block whose first line
  starts with ``>>>`` is a doctest, and its printed output is checked
  (``ELLIPSIS`` is the only option); any other is executed as a script, its
  output not checked.
- ``.. code-block::`` of another language (``bash``, ``console``, ``text``)
  and ``::`` literal blocks never run. A ``::`` block that compiles as Python
  is refused (see ``test_python_is_marked_as_python``): Python shown to a
  reader is marked as such, so that it runs here.
- ``.. test: skip: <reason>`` on the line before a block (an RST comment,
  which renders nothing) skips that block. The reason is required: a block
  skips only when CI cannot run it (a GPU, weights or a package that no extra
  installs), and the blocks after it must not need it.

A page that needs a Dask cluster starts a ``LocalCluster`` of at most two
worker processes itself, explicitly, and closes it, as a reader would (a bare
``Client()`` would start a cluster as large as the machine). Pages run with
one BLAS and torch thread (``OMP_NUM_THREADS=1``), as the gallery does.

A page whose code imports a package that is not installed is skipped with
the package's name; CI installs ``skhash[tests]``, which has them all.

``python tests/test_docs.py PAGE.rst`` runs one page as the test does.
"""

import ast
import doctest
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

PYTHON = {"python", "pycon", "py"}
_CODE_BLOCK = re.compile(r"^(\s*)\.\. (?:code-block|code|sourcecode)::\s*(\S*)\s*$")
_INCLUDE = re.compile(r"^(\s*)\.\. include::\s*(\S+)\s*$")
_SKIP = re.compile(r"^\s*\.\. test: skip: (\S.*)$")
_MARKER = re.compile(r"^\s*\.\. test:")


@dataclass
class Block:
    kind: str  # "python", "literal" or another language
    source: str  # dedented
    file: Path
    lineno: int  # of the block's first line of code, 1-based
    skip: str | None = None

    @property
    def where(self):
        return f"{self.file.relative_to(ROOT)}:{self.lineno}"

    @property
    def is_doctest(self):
        return self.source.lstrip().startswith(">>>")


def _lines(path):
    """The page's lines as ``(file, lineno, text)``, includes expanded."""
    for lineno, text in enumerate(path.read_text().splitlines(), 1):
        include = _INCLUDE.match(text)
        if include:
            yield from _lines(path.parent / include.group(2))
        else:
            yield path, lineno, text


def _indent(text):
    return len(text) - len(text.lstrip())


def _body(lines, start, indent):
    """The indented body after ``lines[start - 1]``: ``(text, first, end)``."""
    end = start
    # A directive's options (":caption: ...") come before the blank line.
    while end < len(lines) and lines[end][2].strip().startswith(":"):
        end += 1
    body = []
    while end < len(lines):
        text = lines[end][2]
        if text.strip() and _indent(text) <= indent:
            break
        body.append((lines[end][1], text))
        end += 1
    while body and not body[-1][1].strip():
        body.pop()
    while body and not body[0][1].strip():
        body.pop(0)
    if not body:
        return "", None, end
    margin = min(_indent(text) for _, text in body if text.strip())
    source = "\n".join(text[margin:] for _, text in body) + "\n"
    return source, body[0][0], end


def page_blocks(path):
    """Every code block and ``::`` literal block of a page, in order."""
    lines = list(_lines(path))
    blocks, skip, i = [], None, 0
    while i < len(lines):
        file, lineno, text = lines[i]
        code_block = _CODE_BLOCK.match(text)
        marker = _SKIP.match(text)
        # "Paragraph::" or a lone "::" introduces a literal block.
        is_literal = text.rstrip().endswith("::") and not text.lstrip().startswith("..")
        if marker:
            skip = (marker.group(1), f"{file.relative_to(ROOT)}:{lineno}")
            i += 1
            continue
        if _MARKER.match(text):
            raise ValueError(
                f"{file.relative_to(ROOT)}:{lineno}: unknown marker {text.strip()!r}"
                " (the one known is '.. test: skip: <reason>')"
            )
        if code_block or is_literal:
            language = code_block.group(2) if code_block else "literal"
            kind = "python" if language in PYTHON else language
            source, first, i = _body(lines, i + 1, _indent(text))
            if first is not None:
                blocks.append(
                    Block(kind, source, file, first, skip[0] if skip else None)
                )
            elif skip:
                raise ValueError(f"{skip[1]}: the skip marker is before no block")
            skip = None
            continue
        if skip and text.strip():
            raise ValueError(f"{skip[1]}: the skip marker is not right before a block")
        i += 1
    if skip:
        raise ValueError(f"{skip[1]}: the skip marker is before no block")
    return blocks


def _pages():
    return sorted(
        page
        for page in [*DOCS.glob("*.rst"), *DOCS.glob("user_guide/*.rst")]
        if not page.name.startswith("_")
    )


def _pages_with_python():
    return [
        page
        for page in _pages()
        if any(block.kind == "python" for block in page_blocks(page))
    ]


def _imported_modules(block):
    if block.is_doctest:
        source = "".join(
            example.source
            for example in doctest.DocTestParser().get_examples(block.source)
        )
    else:
        source = block.source
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def run_page(page):
    """Run the page's Python blocks in order in one namespace; raise
    ``AssertionError`` at the first that fails."""
    namespace = {"__name__": "__main__"}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    start = time.perf_counter()
    for block in page_blocks(page):
        if block.kind != "python" or block.skip:
            continue
        print(f"--- {block.where} at {time.perf_counter() - start:.1f} s", flush=True)
        if block.is_doctest:
            test = doctest.DocTestParser().get_doctest(
                block.source, namespace, block.where, str(block.file), block.lineno - 1
            )
            report = []
            result = runner.run(test, out=report.append, clear_globs=False)
            namespace.update(test.globs)
            if result.failed:
                raise AssertionError("".join(report))
        else:
            # Padded so that a traceback names the page's own lines.
            source = "\n" * (block.lineno - 1) + block.source
            exec(compile(source, str(block.file), "exec"), namespace)
    print(f"--- done at {time.perf_counter() - start:.1f} s", flush=True)


@pytest.mark.parametrize(
    "page", _pages_with_python(), ids=lambda page: str(page.relative_to(DOCS))
)
def test_page_runs_as_printed(page, tmp_path):
    blocks = [b for b in page_blocks(page) if b.kind == "python" and not b.skip]
    missing = sorted(
        name
        for block in blocks
        for name in _imported_modules(block)
        if importlib.util.find_spec(name) is None
    )
    if missing:
        pytest.skip(f"{page.name} needs {', '.join(dict.fromkeys(missing))}")
    # One BLAS and torch thread, as the gallery runs (docs/conf.py): threads
    # fighting over a small shared machine's cores make the pages several
    # times slower, and Dask's workers are processes of one thread anyway.
    env = {"OMP_NUM_THREADS": "1", **os.environ, "MPLBACKEND": "Agg"}
    # A session of its own, so that a page stuck past the timeout is killed
    # with the Dask workers it started.
    process = subprocess.Popen(
        [sys.executable, __file__, str(page)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        stderr += "\n(killed after 600 s)"
    if process.returncode:
        pytest.fail(
            f"{page.relative_to(ROOT)} does not run as printed:\n"
            f"{stdout[-4000:]}\n{stderr[-8000:]}",
            pytrace=False,
        )


def test_python_is_marked_as_python():
    """A ``::`` literal block of Python code would not run here: it must be a
    ``.. code-block:: python``."""
    unmarked = []
    for page in _pages():
        for block in page_blocks(page):
            if block.kind != "literal":
                continue
            try:
                compile(block.source, block.where, "exec")
            except SyntaxError:
                continue
            unmarked.append(block.where)
    assert not unmarked, f"Python in '::' blocks, not run: {unmarked}"


def test_skips_are_few_and_give_a_reason():
    skips = [
        (block.where, block.skip)
        for page in _pages()
        for block in page_blocks(page)
        if block.skip
    ]
    assert len(skips) <= 3, skips
    assert all(reason.strip() for _, reason in skips)


def test_dask_pages_start_a_small_cluster_and_close_it():
    for page in _pages():
        code = "".join(
            block.source
            for block in page_blocks(page)
            if block.kind == "python" and not block.skip
        )
        assert "Client()" not in code, page
        for cluster in re.findall(r"(\w+) = LocalCluster\((.*)\)", code):
            name, arguments = cluster
            assert re.search(r"n_workers=[12]\b", arguments), (page, arguments)
            assert f"{name}.close()" in code, page


if __name__ == "__main__":
    # The page's imports resolve as in a user's session in the working
    # directory, not against tests/ (whose folders are named like packages).
    sys.path[0] = ""
    run_page(Path(sys.argv[1]).resolve())
