"""What the bench reports show, gathered from a bench record before anything is written.

:func:`report_context` reads the diagnosis records the record points to (each source's own analysis with its AP
impact, and the seed-0 analysis of every (ablation, source) pair for the diagnosis plots) and the images of the crop
panels, so a missing or broken file is a one-line error before the first report file exists. Labels (``UNTRAINED`` marks) and the resolutions of
the validation set and of its occluded subset are fixed here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from posefix_bench.record.schema import AblationResult, BenchRecord, SourceRun
from posefix_bench.record.stats import resolution
from posefix_bench.structures.io import read_json

__all__ = ["SMALL_DATA_PERSONS", "ReportContext", "report_context", "label", "source_label"]

SMALL_DATA_PERSONS = 200  # below this many validation persons the index warns that a few AP points are noise


def label(summary: Mapping) -> str:
    """An ablation's name as reports show it ("UNTRAINED" appended for an untrained refiner)."""
    return summary["ablation"] + (" (UNTRAINED)" if summary.get("untrained") else "")


def source_label(src: SourceRun) -> str:
    return src.name + (" (UNTRAINED)" if src.untrained else "")


@dataclass
class ReportContext:
    """A bench record with the files it points to read, checked and indexed for rendering."""

    record: BenchRecord
    diags: dict  # (ablation, source) -> seed-0 diagnosis, AP impact of the input merged in from the baseline
    baselines: dict  # source -> the source's own diagnosis (with AP impact)
    crops: dict  # ablation -> crop-panel items (images read) of its first seed on the first source
    resolution: float
    occluded_resolution: float | None

    @property
    def sources(self) -> list[str]:
        return self.record.source_names

    @property
    def summaries(self) -> list[dict]:
        return [a.metrics for a in self.record.ablations]

    @property
    def default(self) -> str | None:
        d = self.record.default_ablation
        return d if d in {a.name for a in self.record.ablations} else None

    def summary(self, name: str) -> dict:
        return self.record.ablation(name).metrics

    def ablation(self, name: str) -> AblationResult:
        return self.record.ablation(name)

    def summaries_of(self, names) -> dict[str, dict]:
        return {n: self.summary(n) for n in names}

    def labels(self) -> dict[str, str]:
        return {a.name: label(a.metrics) for a in self.record.ablations}


def report_context(record: BenchRecord) -> ReportContext:
    """Read everything the reports need besides the record (see the module docstring)."""
    from posefix_bench.reporting.bench_plots import crop_items

    baselines = {s.name: read_json(s.baseline["analysis"], "analysis")["diagnosis"] for s in record.sources}
    diags, crops = {}, {}
    for a in record.ablations:
        crops[a.name] = crop_items(a.run(a.seeds[0], record.source_names[0]).crops)
        for name in record.source_names:
            d = read_json(a.run(a.seeds[0], name).analysis, "analysis")["diagnosis"]
            if d.get("ap_impact") is None:  # the bench measures AP impact once per source, on the input
                d = dict(d, ap_impact=baselines[name].get("ap_impact"))
            diags[(a.name, name)] = d
    occl = record.data.val_occluded_persons
    return ReportContext(record, diags, baselines, crops, resolution(record.data.val_persons),
                         resolution(occl) if occl else None)
