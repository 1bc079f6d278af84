"""mkdocs hooks for the learner's notebook, which lives in ``notebooks/`` (beside its jupytext pair),
not in ``docs/``: the site serves it as a page of its own, and the links between it and the docs'
pages, written as GitHub's relative links, become the site's."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File
from mkdocs.structure.toc import get_toc

NOTEBOOK = "learning_by_autograd.ipynb"
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

# Under mkdocs's logger a warning fails the strict build.
log = logging.getLogger("mkdocs.hooks.jaxcal")

# A heading of a Markdown cell as nbconvert renders it: its id, its content, then its anchor link.
_HEADING = re.compile(r'<h([1-6]) id="([^"]+)">(.*?)<a class="anchor-link"[^>]*>.*?</a>\s*</h\1>', re.S)
_TAG = re.compile(r"<[^>]+>")
_DOCS_LINK = re.compile(r'href="\.\./docs/([^"#]+\.md)(#[^"]*)?"')


@event_priority(100)  # before mkdocs-jupyter turns notebooks into pages
def on_files(files, config):
    files.append(File(NOTEBOOK, str(NOTEBOOKS), config["site_dir"], config["use_directory_urls"]))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    return markdown.replace(f"../notebooks/{NOTEBOOK}", NOTEBOOK)


def on_page_content(html: str, page, config, files) -> str:
    if page.file.src_uri != NOTEBOOK:
        return html
    # mkdocs-jupyter builds its table of contents from the notebook with inline code deleted, so a
    # heading such as "`zero_()`: nothing to clear" lost its code, and its anchor, which then
    # pointed at no heading: the headings nbconvert rendered give both whole.
    page.toc = get_toc(toc_tokens(html))
    return _DOCS_LINK.sub(lambda match: _site_link(match, page, files), html)


def toc_tokens(html: str) -> list[dict]:
    """The nested table-of-contents tokens (mkdocs's format) of a notebook page's headings.

    Args:
        html: the page as nbconvert rendered it.

    Returns:
        One token per heading (``level``, ``id``, ``name`` as plain text, ``children``), nested by level.
    """
    root: dict = {"level": 0, "children": []}
    stack = [root]
    for level, anchor, content in _HEADING.findall(html):
        token = {"level": int(level), "id": anchor, "name": _TAG.sub("", content).strip(), "children": []}
        while stack[-1]["level"] >= token["level"]:
            stack.pop()
        stack[-1]["children"].append(token)
        stack.append(token)
    return root["children"]


def _site_link(match: re.Match, page, files) -> str:
    name, anchor = match.group(1), match.group(2) or ""
    target = files.get_file_from_path(name)
    if target is None:
        log.warning("%s links to ../docs/%s, which is not a page of the site", NOTEBOOK, name)
        return match.group(0)
    return f'href="{target.url_relative_to(page.file)}{anchor}"'
