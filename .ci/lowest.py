"""Print pip constraints that pin every declared lower bound of pyproject.toml (``name>=X`` ->
``name==X``): the runtime dependencies and the extras the lowest-versions run installs.

    python .ci/lowest.py test plot > constraints.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
requirements = list(project["dependencies"])
for extra in sys.argv[1:]:
    requirements += project["optional-dependencies"][extra]
for requirement in requirements:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-\[\]]+)\s*>=\s*([0-9][0-9A-Za-z.]*)\s*", requirement)
    if match:
        name = match.group(1).split("[")[0]
        print(f"{name}=={match.group(2)}")
