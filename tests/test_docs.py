"""The docs cannot drift: generated pages match what they are generated from, every relative link
resolves, every flag is in the reference, and every shell example prints what the docs show."""

from __future__ import annotations

import argparse
import doctest
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
README_LIMIT = 10 * 1024  # bytes: a README a user reads in a few minutes


def _generator():
    spec = importlib.util.spec_from_file_location("jaxcal_docs_generate", DOCS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- generated pages -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cli.md", "api.md", "performance.md", "README.md"])
def test_generated_files_are_current(name: str) -> None:
    generated = {path.name: text for path, text in _generator().generated().items()}
    path = ROOT / name if name == "README.md" else DOCS / name
    assert path.read_text() == generated[name], f"{name} is stale: run `python docs/generate.py` (make reference)"


def test_every_flag_of_every_command_is_in_the_reference() -> None:
    from jaxcal.cli import build_parser

    reference = (DOCS / "cli.md").read_text()
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert commands.choices
    for name, sub in commands.choices.items():
        section = reference.split(f"\n## jaxcal {name}\n", 1)[1].split("\n## ", 1)[0]
        for action in sub._actions:
            if action.help == argparse.SUPPRESS:
                continue
            for flag in action.option_strings:
                assert f"`{flag}`" in section, f"jaxcal {name} {flag} is missing from docs/cli.md"


def test_the_readme_is_short() -> None:
    assert (ROOT / "README.md").stat().st_size <= README_LIMIT


# -- links -----------------------------------------------------------------------------------------

_FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.S | re.M)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _prose(text: str) -> str:
    return _CODE.sub("", _FENCE.sub("", text))


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors: set[str] = set()
    for line in _FENCE.sub("", path.read_text()).splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            slug = re.sub(r"[^\w\- ]", "", match.group(1).replace("`", "").strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def _links() -> list[tuple[Path, str]]:
    return [(page, target) for page in PAGES for target in _LINK.findall(_prose(page.read_text()))
            if not re.match(r"[a-z]+:", target)]


def test_there_are_links_to_check() -> None:
    assert len(_links()) > 20


@pytest.mark.parametrize(("page", "target"), _links(), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_relative_links_resolve(page: Path, target: str) -> None:
    file, _, anchor = target.partition("#")
    resolved = (page.parent / file).resolve() if file else page
    assert resolved.exists(), f"{page.name}: {target} does not exist"
    if anchor and resolved.suffix == ".md":
        assert anchor in _anchors(resolved), f"{page.name}: {target}: no heading with that anchor"


def test_the_link_check_catches_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[there](missing.md) and `[not a link](code.md)`\n\n```\n[nor](this.md)\n```\n")
    assert _LINK.findall(_prose(page.read_text())) == ["missing.md"]
    assert _anchors(page) == {"title"}


# -- shell examples --------------------------------------------------------------------------------

MARKER = "@@jaxcal-docs-command@@"


def _console_blocks() -> list[tuple[str, list[tuple[str, str]]]]:
    """Every ```console block as (where, [(command, expected output)])."""
    blocks = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        i = 0
        while i < len(lines):
            if lines[i].strip() != "```console":
                i += 1
                continue
            start, i = i + 1, i + 1
            steps: list[tuple[str, list[str]]] = []
            while lines[i].strip() != "```":
                if lines[i].startswith("$ "):
                    steps.append((lines[i][2:], []))
                elif steps:
                    steps[-1][1].append(lines[i])
                i += 1
            blocks.append((f"{page.relative_to(ROOT)}:{start}", [(c, "\n".join(o)) for c, o in steps]))
    return blocks


def _run_block(steps: list[tuple[str, str]], folder: Path, cache: Path | None = None) -> list[str]:
    """Run the commands in one bash process, in order, in ``folder``; each one's merged output.
    ``cache``: the persistent compilation cache the commands share (else none)."""
    script = ["__status=0"]
    for command, _ in steps:
        script += [f"printf '\\n{MARKER}\\n'", f"(exit $__status); {{ {command}\n}} 2>&1; __status=$?"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_", "PYTEST"))}
    if cache is not None:
        env.update(JAXCAL_NO_CACHE="", JAXCAL_CACHE_DIR=str(cache))
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", PYTHONUNBUFFERED="1",
               MPLBACKEND="Agg")
    done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    parts = done.stdout.split(f"\n{MARKER}\n")[1:]
    assert len(parts) == len(steps), done.stdout + done.stderr
    return parts


def _matches(want: str, got: str) -> bool:
    tidy = lambda text: "\n".join(line.rstrip() for line in text.strip("\n").splitlines()) + "\n"  # noqa: E731
    return doctest.OutputChecker().check_output(tidy(want), tidy(got), doctest.ELLIPSIS)


BLOCKS = _console_blocks()


def test_there_are_shell_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.fixture(scope="session")
def examples_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One persistent compilation cache for the examples of one test process (they run one at a time): a
    page's later commands load what its earlier ones compiled, as a user's second run does; a cached program
    is the compiled one, so the examples print the same."""
    return tmp_path_factory.mktemp("jax-cache")


@pytest.mark.slow
@pytest.mark.parametrize("steps", [steps for _, steps in BLOCKS], ids=[where for where, _ in BLOCKS])
def test_shell_example_prints_what_the_docs_show(steps: list[tuple[str, str]], tmp_path: Path,
                                                 examples_cache: Path) -> None:
    if (DOCS / "examples").is_dir():
        shutil.copytree(DOCS / "examples", tmp_path, dirs_exist_ok=True)
    # processes of one launch would compile the same program at once, and JAX's cache writes its files in
    # place: one could read another's half-written file. A launch's example runs without the cache.
    launches = any(re.search(r"\blaunch\b|--processes", command) for command, _ in steps)
    outputs = _run_block(steps, tmp_path, None if launches else examples_cache)
    for (command, want), got in zip(steps, outputs, strict=True):
        assert _matches(want, got), f"$ {command}\n--- the docs show ---\n{want}\n--- it printed ---\n{got}"


def test_the_example_check_can_fail(tmp_path: Path) -> None:
    steps = [("echo 1; echo 2", "1\n2"), ("false", ""), ("echo $?", "1"), ("echo abc", "x...")]
    outputs = _run_block(steps, tmp_path)
    assert [_matches(want, got) for (_, want), got in zip(steps, outputs, strict=True)] == [True, True, True, False]


def test_pip_install_ships_every_subpackage() -> None:
    """The docs' install line is ``pip install .``: the distribution must hold jaxcal.cli too."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    src = ROOT / "src"
    packages = {".".join(init.relative_to(src).parts[:-1]) for init in (src / "jaxcal").rglob("__init__.py")}
    assert "jaxcal.cli" in packages
    assert listed == packages
