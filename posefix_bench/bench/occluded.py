"""The dedicated lower-body-occluded validation split in the bench's runs (issue 27).

The profile's own validation split holds too few lower-body-occluded people to resolve the lower-body
augmentation's effect (133 in 300 images); a profile's ``occluded_split`` adds generated scenes in which every
person stands behind a lower-body occluder (:meth:`posefix_bench.bench.steps.BenchSteps.occluded_split`). The
ablations of a comparison on the occluded subset refine the listed sources there too, and that analysis gives their
runs' occluded subset: AP before and after with the paired bootstrap's interval, lower-body transitions and the
input-confidence bins.
"""

from __future__ import annotations

from posefix_bench.bench.profile import Profile
from posefix_bench.record.schema import Run

__all__ = ["occluded_question", "dedicated_occluded"]


def occluded_question(profile: Profile, ablation: str) -> bool:
    """Whether an ablation takes part in a comparison on the occluded subset (the lower-body question)."""
    tags = set(profile.ablation(ablation).tags)
    return any(c.get("subset") == "occluded" and c.get("tag") in tags for c in profile.comparisons)


def dedicated_occluded(run: Run, analysis: dict) -> None:
    """A run's occluded subset from the dedicated occluded split's analysis (``analysis``: the same refiner on the
    same source there): its subset record (with ``split``, ``images`` and the input-confidence transitions) and its
    bootstrap's occluded part replace the profile split's."""
    boot = analysis.get("bootstrap") or {}
    run.occluded = dict(analysis["occluded"], split="dedicated", images=(boot.get("all") or {}).get("images"),
                        per_confidence=analysis["diagnosis"]["transitions"]["per_confidence"],
                        analysis=analysis["path"])
    if run.bootstrap and boot:
        run.bootstrap = dict(run.bootstrap, occluded=boot["occluded"], occluded_samples=analysis["bootstrap_samples"],
                             occluded_per_confidence=boot["per_confidence"],
                             seconds=(run.bootstrap.get("seconds") or 0.0) + (boot.get("seconds") or 0.0))
