"""mkdocs hooks: the learner's notebook lives in ``notebooks/`` (beside its jupytext pair), not in
``docs/``; the site serves it as a page of its own, and the GitHub link to it becomes the page's."""

from __future__ import annotations

from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

NOTEBOOK = "learning_by_autograd.ipynb"
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@event_priority(100)  # before mkdocs-jupyter turns notebooks into pages
def on_files(files, config):
    files.append(File(NOTEBOOK, str(NOTEBOOKS), config["site_dir"], config["use_directory_urls"]))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    return markdown.replace(f"../notebooks/{NOTEBOOK}", NOTEBOOK)
