"""A first reader can follow the docs: they say how to run the command `make demo` installed, name
pages by links, link the book's notebook the tutorial follows, name files where they are, and
the site's notebook page keeps its headings whole in its table of contents."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NOTEBOOK = ROOT / "notebooks" / "learning_by_autograd.md"
GENERATED = {"api.md", "cli.md", "performance.md"}
WRITTEN = [ROOT / "README.md", *(p for p in sorted(DOCS.glob("*.md")) if p.name not in GENERATED), NOTEBOOK]
BOOK_NOTEBOOK = "https://github.com/deep-learning-with-pytorch/dlwpt-code/blob/master/p1ch5/2_autograd.ipynb"

_FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.S | re.M)
_CODE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)\)")


def _ids(pages: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in pages]


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start: None if end < 0 else end]


# -- running the installed command --------------------------------------------------------------

@pytest.mark.parametrize("page", [ROOT / "README.md", DOCS / "index.md", DOCS / "tutorial.md", NOTEBOOK],
                         ids=_ids([ROOT / "README.md", DOCS / "index.md", DOCS / "tutorial.md", NOTEBOOK]))
def test_the_first_jaxcal_command_comes_with_how_to_run_it(page: Path) -> None:
    """`make demo` leaves .venv inactive: `jaxcal` alone is "command not found" in the reader's shell."""
    text = page.read_text()
    first = re.search(r"(^\$ |`)jaxcal [a-z]", text, re.M)
    assert first, f"{page.name} shows no jaxcal command"
    end = text.find("\n## ", first.start())
    reachable = text[: None if end < 0 else end]
    assert ".venv/bin/jaxcal" in reachable, f"{page.name}: the section of its first jaxcal command"
    assert "source .venv/bin/activate" in reachable, f"{page.name}: the section of its first jaxcal command"


# -- pages are named by links -------------------------------------------------------------------

def _pages_named_in_code(text: str) -> list[str]:
    named = []
    for span in _CODE.findall(_FENCE.sub("", text)):
        match = re.fullmatch(r"(?:\.\./)?(?:docs/)?([\w-]+\.md)(?:#[\w-]+)?", span)
        if match and (DOCS / match.group(1)).exists():
            named.append(span)
    return named


@pytest.mark.parametrize("page", WRITTEN, ids=_ids(WRITTEN))
def test_pages_are_named_by_links_not_code(page: Path) -> None:
    assert _pages_named_in_code(page.read_text()) == [], f"{page.name}: make these links"


def test_the_code_check_sees_a_page_named_in_code() -> None:
    assert _pages_named_in_code("see `docs/cli.md` and `fleets.md`, not `jaxcal.md`\n```\n`api.md`\n```\n") == [
        "docs/cli.md", "fleets.md"]


@pytest.mark.parametrize("page", [DOCS / "tutorial.md", NOTEBOOK], ids=_ids([DOCS / "tutorial.md", NOTEBOOK]))
def test_where_to_go_next_links_every_item(page: Path) -> None:
    items = re.split(r"\n- ", _section(page.read_text(), "Where to go next"))[1:]
    assert items
    for item in items:
        pages = [target for _, target in _LINK.findall(item) if not re.match(r"[a-z]+:", target)]
        assert pages, f"{page.name}: {item[:80]!r} links no page"


# -- the book's notebook ------------------------------------------------------------------------

def test_the_tutorial_and_the_notebook_link_the_books_notebook() -> None:
    committed = json.loads(NOTEBOOK.with_suffix(".ipynb").read_text())
    prose = "".join("".join(c["source"]) for c in committed["cells"] if c["cell_type"] == "markdown")
    for name, text in [("tutorial.md", (DOCS / "tutorial.md").read_text()), ("the notebook", prose)]:
        assert BOOK_NOTEBOOK in [target for _, target in _LINK.findall(text)], name
        assert "Deep Learning with PyTorch" in text, name


# -- the notebook's links -----------------------------------------------------------------------

def _notebook_links() -> list[str]:
    return [t for _, t in _LINK.findall(_CODE.sub("", _FENCE.sub("", NOTEBOOK.read_text())))
            if not re.match(r"[a-z]+:", t)]


def test_the_notebook_links_the_docs() -> None:
    assert len(_notebook_links()) >= 4


@pytest.mark.parametrize("target", _notebook_links())
def test_the_notebooks_links_resolve_on_github_and_in_the_site(target: str) -> None:
    file, _, anchor = target.partition("#")
    # docs/hooks.py maps ../docs/<page>.md to the site's page; a link anywhere else breaks there
    assert re.fullmatch(r"\.\./docs/[\w-]+\.md", file), f"{target}: link a page of docs/"
    assert (NOTEBOOK.parent / file).resolve().exists(), target
    if anchor:
        headings = re.findall(r"^#{1,6}\s+(.*)$", _FENCE.sub("", (NOTEBOOK.parent / file).read_text()), re.M)
        slugs = {re.sub(r"[^\w\- ]", "", h.replace("`", "").strip().lower()).replace(" ", "-") for h in headings}
        assert anchor in slugs, target


# -- files are named where they are (the src/ layout) -------------------------------------------

def _missing_files(page: Path) -> list[str]:
    missing = []
    for span in _CODE.findall(_FENCE.sub("", page.read_text())):
        if not re.fullmatch(r"[\w./-]+\.py", span):
            continue
        if "/" in span and span.split("/")[0] in {"src", "tests", "benchmarks", "docs", ".ci", "notebooks"}:
            where = ROOT / span
        elif page.name == "architecture.md":  # the page says its file names are relative to src/jaxcal/
            where = ROOT / "src" / "jaxcal" / span
        elif "/" in span:
            where = ROOT / span
        else:
            continue  # a module named as a module (`tolerances.py` in prose), not a path
        if not where.exists():
            missing.append(span)
    return missing


@pytest.mark.parametrize("page", WRITTEN, ids=_ids(WRITTEN))
def test_file_paths_in_the_docs_exist(page: Path) -> None:
    assert _missing_files(page) == []


def test_the_path_check_sees_a_moved_file(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("`jaxcal/exact.py`, `src/jaxcal/exact.py`, `tests/test_docs.py`, `<name>.py`\n")
    assert _missing_files(page) == ["jaxcal/exact.py"]


# -- the dtype rules the README and the API page state ------------------------------------------

_DTYPES = """
import sys
import jax
jax.config.update("jax_enable_x64", sys.argv[1] == "on")
import numpy as np
import jaxcal
from jaxcal import data
as_float64 = [np.asarray(a, np.float64) for a in (data.t_un, data.t_c)]
print(jaxcal.training_loop(10, 1e-2, [1.0, 0.0], data.t_un, data.t_c).params.dtype,
      jaxcal.training_loop(10, 1e-2, [1.0, 0.0], *as_float64).params.dtype)
"""


@pytest.mark.slow
@pytest.mark.parametrize(("x64", "want"), [("on", "float32 float64"), ("off", "float32 float32")])
def test_the_dtype_rules_the_docs_state(x64: str, want: str) -> None:
    """What README.md and the API page say: the book's float32 readings stay float32 with x64 on;
    float64 readings compute in float64 only with x64 on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_", "PYTEST"))}
    done = subprocess.run([sys.executable, "-c", _DTYPES, x64], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == want.split()


# -- the site's notebook page -------------------------------------------------------------------

@pytest.mark.slow
def test_the_notebook_page_keeps_inline_code_in_its_toc_and_links_the_site(tmp_path: Path) -> None:
    """mkdocs-jupyter's own table of contents deletes inline code from headings (and so breaks their
    anchors); docs/hooks.py rebuilds it from the rendered headings."""
    if importlib.util.find_spec("mkdocs_jupyter") is None:
        pytest.skip("the docs extra is not installed")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "-f",
                           str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    page = tmp_path / "site" / "learning_by_autograd" / "index.html"
    html = page.read_text()

    toc = html[html.index('class="md-nav md-nav--secondary"'):]
    entries = dict.fromkeys(
        (anchor, " ".join(unescape(title).split()))
        for anchor, title in re.findall(r'<a href="#([^"]*)" class="md-nav__link">\s*<span class="md-ellipsis">'
                                        r"(.*?)</span>", toc, re.S))
    headings = [h.replace("`", "") for h in re.findall(r"^## (.*)$", _FENCE.sub("", NOTEBOOK.read_text()), re.M)]
    assert [title for _, title in entries] == headings
    ids = set(re.findall(r' id="([^"]+)"', html))
    assert [anchor for anchor, _ in entries if anchor not in ids] == []

    # the notebook's links to ../docs/<page>.md, made the site's
    local = [h for h in re.findall(r'href="([^"#]*)(?:#[^"]*)?"', html) if h and not re.match(r"[a-z]+:|/", h)]
    assert any(h.startswith("../cli") for h in local)
    for href in local:
        target = (page.parent / href).resolve()
        assert target.is_file() or (target / "index.html").is_file(), href
