"""Module-level job functions for the executor tests (importable by spawned workers and submitit job processes)."""

from __future__ import annotations

from pathlib import Path

from posefix_bench.bench.cache import StepCache


def cached_square(cache_root: str, x: int) -> dict:
    """Square ``x`` as a bench step does: through the content-hash step cache, counting real computations."""
    step = StepCache(cache_root).step("square", {"x": x})
    if not step.done:
        runs = step.path / "runs"
        runs.write_text(str(int(runs.read_text()) + 1 if runs.is_file() else 1))
        step.mark_done({"value": x * x})
    return {"value": step.summary()["value"], "runs": int((step.path / "runs").read_text())}


def fail_if_missing(path: str) -> str:
    """Fails (FileNotFoundError) unless ``path`` exists: a job whose failure the executor must report."""
    return Path(path).read_text()
