"""README's "Your estimator on your data" runs as written (issue 28): its fenced shell block is extracted from
README.md and run verbatim with bash, from a folder laid out as the repository root is (``ablations/`` beside,
``../shared/data`` above), so the documented profile cannot drift from what the bench accepts."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Your estimator on your data"


def readme_block() -> str:
    text = (REPO / "README.md").read_text()
    assert SECTION in text, "README.md lost its section 'Your estimator on your data'"
    body = text.split(SECTION, 1)[1]
    match = re.search(r"```bash\n(.*?)```", body, re.S)
    assert match, "no fenced bash block in the section"
    return match.group(1)


@pytest.mark.slow
def test_the_readme_profile_over_coco_mini_runs_verbatim(tmp_path):
    root, shared = tmp_path / "repo", REPO.parent / "shared"
    assert (shared / "data" / "coco-mini").is_dir(), f"{shared}/data/coco-mini: the shared data is missing"
    root.mkdir()
    (root / "ablations").symlink_to(REPO / "ablations", target_is_directory=True)
    (tmp_path / "shared").symlink_to(shared, target_is_directory=True)
    bin_dir = root / ".venv" / "bin"  # `.venv/bin/posefix-bench` as `make setup` installs it, this checkout
    bin_dir.mkdir(parents=True)
    (bin_dir / "posefix-bench").write_text(f'#!/bin/sh\nexec {sys.executable} -m posefix_bench.cli "$@"\n')
    (bin_dir / "posefix-bench").chmod(0o755)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", readme_block()], cwd=root, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    bench = json.loads((root / "mine-reports" / "mine-smoke" / "bench.json").read_text())
    (src,) = bench["sources"]
    assert src["name"] == "my-estimator" and src["poses"] > 0 and bench["data"]["kind"] == "coco"
    assert (root / "mine-reports" / "mine-smoke" / "index.md").is_file()
