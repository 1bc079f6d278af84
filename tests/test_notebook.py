"""The learner's notebook cannot rot: its jupytext pair is in sync, a fresh execution prints what
the committed notebook shows, and its exact-mode cell prints the seed's log digit for digit."""

from __future__ import annotations

import os
import re
from pathlib import Path

import jupytext
import nbclient
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "learning_by_autograd"
SEED_LOG = Path(__file__).parent / "reference" / "seed_output.txt"

_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def _text_outputs(cell) -> str:
    """What a code cell printed or returned as text (images are left out: their bytes vary with
    matplotlib's version); memory addresses are not part of it."""
    parts: list[str] = []
    stream = None
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            # the kernel sends printed text in chunks as it comes: one stream's text is their join
            if stream == output["name"]:
                parts[-1] += output["text"]
            else:
                parts.append(f"[{output['name']}] {output['text']}")
            stream = output["name"]
            continue
        stream = None
        if output["output_type"] in ("execute_result", "display_data") and "text/plain" in output["data"]:
            if "image/png" not in output["data"]:
                parts.append(output["data"]["text/plain"])
        elif output["output_type"] == "error":
            parts.append(f"[error] {output['ename']}: {output['evalue']}")
    return _ADDRESS.sub(" at 0x", "\n".join(parts))


@pytest.fixture(scope="module")
def executed():
    notebook = jupytext.read(NOTEBOOK.with_suffix(".md"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX", "XLA", "PYTEST"))}
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.km = client.create_kernel_manager()
    client.start_new_kernel(env=env)
    try:
        client.start_new_kernel_client()
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
    finally:
        client._cleanup_kernel()
    return notebook


def test_the_pair_is_in_sync() -> None:
    paired = jupytext.read(NOTEBOOK.with_suffix(".md"))
    committed = nbformat.read(NOTEBOOK.with_suffix(".ipynb"), as_version=4)
    assert [(c.cell_type, c.source) for c in paired.cells] == [(c.cell_type, c.source) for c in committed.cells]


def test_the_committed_notebook_has_its_outputs() -> None:
    committed = nbformat.read(NOTEBOOK.with_suffix(".ipynb"), as_version=4)
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert code
    assert all(c.get("execution_count") for c in code)
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs), "the plot of the fit"


@pytest.mark.slow
def test_a_fresh_run_prints_what_the_committed_notebook_shows(executed) -> None:
    committed = nbformat.read(NOTEBOOK.with_suffix(".ipynb"), as_version=4)
    for number, (fresh, kept) in enumerate(zip(executed.cells, committed.cells, strict=True)):
        if fresh.cell_type == "code":
            assert _text_outputs(fresh) == _text_outputs(kept), f"cell {number}: {fresh.source[:80]!r}"
            assert "[error]" not in _text_outputs(fresh), number
            assert "[stderr]" not in _text_outputs(fresh), f"cell {number} printed to stderr (a warning?)"


@pytest.mark.slow
def test_exact_mode_prints_the_seeds_log_digit_for_digit(executed) -> None:
    log = SEED_LOG.read_text().splitlines()
    logged = [line for line in log if line.startswith(("Epoch", "params.grad"))]
    assert len(logged) == 20
    assert "params.grad tensor([-9.7513e-05, 6.1291e-04])" in logged
    printed = [_text_outputs(c) for c in executed.cells if c.cell_type == "code"]
    assert any("\n".join(logged) in text for text in printed), "no cell prints the seed's 20 log lines"
