"""The bench record: what a bench run computed, as typed structures both the bench (which builds it) and reporting
(which renders it) import, so that neither imports the other (detectron2's split of computing and presenting).

- :mod:`~posefix_bench.record.stats`: statistics over seeds and the fixed rules that judge them;
- :mod:`~posefix_bench.record.metrics`: the per-ablation metrics (``metrics.json``), aggregated over seeds;
- :mod:`~posefix_bench.record.schema`: the typed record (``bench.json``) and its validation.
"""
