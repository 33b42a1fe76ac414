"""README.md's "Benchmark your own refiner": its commands run verbatim (bash, from the repository root) and do what
the section says: the example refiner refines and is evaluated, and the example profile benchmarks it beside posefix,
identity and the pose prior."""

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Benchmark your own refiner", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [line for line in block.splitlines() if line.strip()]


@pytest.mark.slow
def test_the_readme_example_runs_verbatim(tmp_path):
    # a folder laid out as a fresh clone after `make setup`: examples/ and ablations/ of this checkout, ../shared
    # beside it, `.venv/bin/posefix-bench` (this interpreter, this checkout); no `python` on PATH is needed
    root, shared = tmp_path / "repo", REPO.parent / "shared"
    root.mkdir()
    for name in ("examples", "ablations"):
        (root / name).symlink_to(REPO / name, target_is_directory=True)
    (tmp_path / "shared").symlink_to(shared, target_is_directory=True)
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "posefix-bench").write_text(f'#!/bin/sh\nexport PYTHONPATH="${{PYTHONPATH:+$PYTHONPATH:}}{REPO}"\n'
                                           f'exec "{sys.executable}" -m posefix_bench.cli "$@"\n')
    (bin_dir / "posefix-bench").chmod(stat.S_IRWXU)
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), POSEFIX_CACHE=str(tmp_path / "cache"))
    env.pop("PYTHONPATH", None)
    commands = _commands()
    assert len(commands) >= 4 and any(c.startswith("PYTHONPATH=examples .venv/bin/posefix-bench bench")
                                      for c in commands)
    done = subprocess.run(["bash", "-e", "-c", "\n".join(commands)], cwd=root, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "my-refiner" not in done.stderr  # no method error
    refined = json.loads((out / "refined.json").read_text())
    assert refined and all(r["refined_by"] == "command" for r in refined)
    assert (out / "eval" / "metrics.json").is_file()
    methods = out / "reports" / "my-refiner" / "methods"
    names = sorted(p.name for p in methods.iterdir())
    assert names == ["identity", "my-refiner", "my-refiner-py", "pose-prior", "posefix"]
    mine = {n: json.loads((methods / n / "metrics.json").read_text())["sources"]["synthetic-paper"]
            for n in ("my-refiner", "my-refiner-py", "identity")}
    assert mine["identity"]["delta"]["mean"] == 0.0
    assert mine["my-refiner"]["ap_after"] == mine["my-refiner-py"]["ap_after"]  # one refiner, two ways in
    assert "## Refinement methods" in (out / "reports" / "my-refiner" / "index.md").read_text()
