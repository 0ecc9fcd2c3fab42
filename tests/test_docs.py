"""Every Python example in README.md and docs/ runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
#: Pages whose examples send tasks to pods: tests/e2e/test_tutorial.py runs them against
#: a live hub and pods.
FEDERATION_PAGES = frozenset({"docs/tutorial-analytics.md", "docs/tutorial-learning.md"})


def _examples() -> list[tuple[str, str]]:
    found = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        if str(page.relative_to(REPO)) in FEDERATION_PAGES:
            continue
        for number, match in enumerate(_BLOCK.finditer(page.read_text()), start=1):
            found.append((f"{page.relative_to(REPO)}#{number}", match.group(1)))
    return found


EXAMPLES = _examples()


def test_the_docs_have_examples() -> None:
    """The README and docs hold Python examples for these tests to run."""
    assert len(EXAMPLES) >= 1


@pytest.mark.parametrize(("where", "code"), EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_example_runs(where: str, code: str) -> None:
    """The example runs in a fresh interpreter from the repository root without error."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, f"{where} failed:\n{result.stderr}"
