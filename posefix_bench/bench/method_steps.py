"""The bench's refinement methods: a profile's ``methods`` run on every source and judged as the ablations are.

A profile lists methods as ``methods=[dict(name=..., type=..., **options)]`` (:mod:`posefix_bench.methods`:
``posefix``, ``identity``, ``command``, ``python``, installed plug-ins). Each is checked when the profile loads
(:func:`check_methods`: a unique name, a known type, options the method takes; a ``command`` or ``python`` method
is built, so a missing program or module fails before any work). For every (method, source) the bench runs one
cached ``method`` step (:meth:`MethodSteps.method_refine`): the method on the source's validation results, its
refinement pass timed alone (the estimator's time apart; the method's loading, e.g. a network, before the clock),
then the same one-pass analysis as an ablation's refinement (:meth:`~posefix_bench.bench.steps.BenchSteps.analyse`:
AP, fixed / broken per error type, per keypoint, the occluded subset).

A ``pose-prior`` method trains (a cached ``pose-prior`` step) on the training samples of the ablation its
``ablation`` option names (default: the default ablation) for that ablation's budget, first seed
(:func:`posefix_bench.methods.pose_prior.train_pose_prior`); ``hidden`` sets its width.

A ``re-estimate`` method's ``estimator`` names an mmpose source of the profile (its card, and for a source trained
here the estimator the bench trained) or any mmpose card.

A ``posefix`` method runs a refiner the profile trains: the ablation its ``ablation`` option names (default: the
profile's default ablation), that ablation's first seed, with the calibrated gate where the bench calibrates one
(the default ablation's), as today's ``refine``; the profile's ``refine`` settings apply unless the entry sets them.
A method's cache key covers its entry, its input, the data, the package code it runs and the files it names (a
command's script, a callable's module), so editing an external refiner reruns its step.

With a local executor the method steps run one after the other in this process, nothing beside them (their
samples/s is a timing); on a cluster each is a job.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

from posefix_bench.bench.cache import file_hash
from posefix_bench.bench.step_codes import METHOD_CODE, PRIOR_CODE
from posefix_bench.errors import PosefixError, file_error

__all__ = ["BENCH_KEYS", "check_methods", "method_entries", "method_files", "MethodSteps", "run_methods"]

BENCH_KEYS = ("name", "type", "ablation")  # what the bench reads from an entry; every other key is a method option
_FROM_BENCH = {"posefix": ("checkpoint", "device"), "pose-prior": ("checkpoint", "device"),
               "re-estimate": ("checkpoint", "untrained", "device")}
_TRAINED_HERE = ("posefix", "pose-prior")  # methods whose weights come from an ablation's training (its data, budget)


def _options(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k not in ("type", "ablation") and not
            (entry["type"] == "pose-prior" and k == "hidden")}


def _estimator_card(entry: dict, sources: Sequence[dict]) -> dict:
    """A re-estimate entry's ``estimator`` as a card: a profile source of an mmpose type names its card; anything
    else is taken as a card name (checked when the method is built)."""
    spec = next((s for s in sources if s.get("name") == entry.get("estimator")), None)
    if spec is None:
        return {}
    if spec.get("type") not in ("mmpose", "mmpose-trained"):
        raise PosefixError(f"method {entry['name']!r}: estimator {spec['name']!r} is a {spec.get('type')} source, "
                           "not an mmpose estimator")
    return {"estimator": spec["card"]}


def check_methods(entries, ablations: Sequence[str], default: str | None, spec_file: Path,
                  sources: Sequence[dict] = ()) -> tuple[dict, ...]:
    """A profile's ``methods`` checked before any work: entries with a unique ``name`` and a known ``type`` whose
    options the method takes; a ``posefix`` method's ``ablation`` (or the default ablation) among ``ablations``
    (all of the profile's, ``--only`` aside); a ``re-estimate`` method's ``estimator`` an mmpose source of the
    profile (``sources``) or an mmpose card. Returns the entries as dicts."""
    from posefix_bench.methods import build_method
    from posefix_bench.methods.pose_prior import PosePriorMethod
    from posefix_bench.methods.posefix import PosefixMethod
    from posefix_bench.registry import check_options

    if entries is None:
        return ()
    if not isinstance(entries, (list, tuple)):
        raise file_error(spec_file, f"methods must be a list of dict(name=..., type=...), got {type(entries).__name__}")
    out, names = [], set()
    for e in entries:
        if not isinstance(e, dict) or not e.get("name") or not e.get("type"):
            raise file_error(spec_file, f"every method needs a 'name' and a 'type', got {e!r}")
        where = f"method {e['name']!r}"
        if e["name"] in names:
            raise file_error(spec_file, f"two methods are named {e['name']!r}")
        names.add(e["name"])
        try:
            if e["type"] in _TRAINED_HERE:
                ablation = e.get("ablation") or default
                if ablation is None or ablation not in ablations:
                    raise PosefixError(f"{where}: ablation {ablation!r} is not an ablation of the profile "
                                       "(name one with ablation=..., or set default_ablation)")
                taken = sorted(set(e) & set(_FROM_BENCH[e["type"]]))
                if taken:
                    raise PosefixError(f"{where}: {taken[0]!r} is set by the bench (from the ablation's training)")
                cls = PosefixMethod if e["type"] == "posefix" else PosePriorMethod
                check_options("method", e["name"], cls.__init__, {k: v for k, v in _options(e).items()
                                                                  if k != "hidden"})
            elif e["type"] == "re-estimate":
                taken = sorted(set(e) & set(_FROM_BENCH["re-estimate"]))
                if taken:
                    raise PosefixError(f"{where}: {taken[0]!r} is set by the bench (from the estimator source)")
                build_method(e["type"], **_options(dict(e, **_estimator_card(e, sources))))
            else:
                if "ablation" in e:
                    raise PosefixError(f"{where}: 'ablation' is an option of posefix and pose-prior methods only")
                build_method(e["type"], **_options(e))
        except PosefixError as err:
            raise file_error(spec_file, str(err)) from None
        out.append(dict(e))
    return tuple(out)


def method_entries(profile) -> list[dict]:
    """The profile's methods that this run can do: a posefix or pose-prior method whose ablation ``--only`` left
    out is not."""
    present = {a.name for a in profile.ablations}
    return [e for e in profile.methods
            if e["type"] not in _TRAINED_HERE or (e.get("ablation") or profile.default_ablation) in present]


def method_files(entry: dict) -> dict:
    """Hashes of the files a method names (a command's arguments that are files, a callable's module source)."""
    import importlib.util
    import shlex

    files = {}
    if entry["type"] == "command":
        cwd = Path(entry.get("cwd") or ".")
        for arg in shlex.split(entry["command"]):
            p = Path(arg) if Path(arg).is_absolute() else cwd / arg
            if p.is_file():
                files[arg] = file_hash(p)
    elif entry["type"] == "python":
        spec = importlib.util.find_spec(str(entry["callable"]).split(":")[0])
        if spec is not None and spec.origin and Path(spec.origin).is_file():
            files[spec.origin] = file_hash(spec.origin)
    return files


class MethodSteps:
    """The ``method`` step of :class:`~posefix_bench.bench.steps.BenchSteps` (which provides ``profile``,
    ``cache``, ``device``, ``code()``, ``data()``, ``train()``, ``calibrate()`` and ``refine_options()``)."""

    def method_refiner(self, entry: dict) -> tuple[dict, dict]:
        """(the posefix options the bench fills in, the cache-key part naming the refiner) of a posefix entry."""
        from posefix_bench.methods.posefix import PosefixMethod
        import inspect

        ablation = self.profile.ablation(entry.get("ablation") or self.profile.default_ablation)
        trained = self.train(ablation, ablation.seeds[0])
        checkpoint, key, gated = trained["checkpoint"], trained["key"], False
        if ablation.name == self.profile.default_ablation:
            cal = self.calibrate(trained)
            if cal["state"] == "calibrated":
                checkpoint, key, gated = cal["checkpoint"], cal["key"], True
        taken = set(inspect.signature(PosefixMethod.__init__).parameters)
        opts = {k: v for k, v in self.refine_options(trained).items() if k in taken}
        opts.update(checkpoint=checkpoint, device=self.device)
        return opts, {"ablation": ablation.name, "seed": ablation.seeds[0], "refiner": key, "gated": gated}

    def method_prior(self, entry: dict) -> tuple[dict, dict]:
        """(the pose-prior options the bench fills in, the cache-key part naming its training): the prior trained
        (cached ``pose-prior`` step) on the ablation's training samples for its budget, first seed."""
        from posefix_bench.methods.pose_prior import HIDDEN, train_pose_prior

        ablation = self.profile.ablation(entry.get("ablation") or self.profile.default_ablation)
        train_step, cfg = self.train_step(ablation, ablation.seeds[0])
        hidden = int(entry.get("hidden", HIDDEN))
        step = self.cache.step("pose-prior", {"train": train_step.key, "hidden": hidden,
                                              "code": self.code(PRIOR_CODE)})
        out = step.path / "prior.pth"
        with step.lock():
            if not step.done:
                step.mark_done(train_pose_prior(cfg, out, hidden, progress=self.progress))
        return {"checkpoint": str(out), "device": self.device}, {"key": step.key, "ablation": ablation.name,
                                                                 "seed": ablation.seeds[0]}

    def method_estimator(self, entry: dict) -> tuple[dict, dict]:
        """(the re-estimate options the bench fills in, the cache-key part naming the estimator's weights)."""
        spec = next((s for s in self.profile.sources if s["name"] == entry["estimator"]), None)
        filled = {"device": self.device, **_estimator_card(entry, self.profile.sources)}
        if spec is not None and spec["type"] == "mmpose-trained":
            ckpt, _ = self.estimator(spec)
            filled["checkpoint"] = str(ckpt)
        elif spec is not None:
            filled.update({k: spec[k] for k in ("checkpoint", "untrained") if k in spec})
        ckpt = filled.get("checkpoint")
        weights = file_hash(ckpt) if ckpt and Path(ckpt).is_file() else ckpt
        return filled, {"card": filled.get("estimator", entry["estimator"]), "weights": weights,
                        "untrained": bool(filled.get("untrained"))}

    def method_refine(self, entry: dict, source: dict) -> dict:
        """A source's validation results refined by a method (cached): ``{"refined", "seconds", "persons",
        "samples_per_s", "options"}``, the seconds those of the refinement pass alone."""
        from posefix_bench.methods import build_method
        from posefix_bench.structures.results import load_results, save_results

        data = self.data()
        options = _options(entry)
        payload = {"method": entry, "results": source["hash"], "gt": data.fingerprint, "files": method_files(entry),
                   "code": self.code(METHOD_CODE)}
        if entry["type"] == "posefix":
            filled, payload["refiner"] = self.method_refiner(entry)
            options = {**filled, **options}
        elif entry["type"] == "re-estimate":
            filled, payload["estimator"] = self.method_estimator(entry)
            options = {**options, **filled}
        elif entry["type"] == "pose-prior":
            filled, payload["prior"] = self.method_prior(entry)
            options = {**options, **filled}
        step = self.cache.step("method", payload)
        out = step.path / "refined.json"
        with step.lock():
            if not step.done:
                method = build_method(entry["type"], **options)
                results = load_results(source["results"], data.val)
                method.prepare()  # a network's loading is not part of its samples/s
                t0 = time.perf_counter()
                refined = method.refine(results, data.val.image_dir, data.val.path)
                seconds = time.perf_counter() - t0
                save_results(out, refined)
                step.mark_done({"seconds": seconds, "persons": len(results),
                                "samples_per_s": len(results) / seconds if seconds > 0 else None,
                                "options": {k: str(v) if isinstance(v, Path) else v for k, v in options.items()},
                                "notices": list(method.notices)})
        return dict(step.summary(), refined=str(out))


def run_methods(steps, sources: Sequence[dict], run_in_jobs: Callable | None, run_of: Callable,
                log: Callable[[str], None] = lambda line: None) -> list:
    """Every method of the profile on every source (``sources``: the runner's source records): the method steps
    (in this process one after the other, or through ``run_in_jobs(pairs) -> [method step records]`` on a
    cluster), each pair analysed, and the :class:`~posefix_bench.record.schema.MethodResult` records.
    ``run_of`` builds a :class:`~posefix_bench.record.schema.Run` from an analysis (the runner's)."""
    from posefix_bench.record.metrics import method_metrics
    from posefix_bench.record.schema import MethodResult

    entries = method_entries(steps.profile)
    for e in steps.profile.methods:
        if e not in entries:
            log(f"method {e['name']}: skipped (its ablation is not in this run)")
    pairs = [(e, src) for e in entries for src in sources]
    if run_in_jobs is None:
        done = []
        for e, src in pairs:
            log(f"method {e['name']} on {src['name']}")
            done.append(steps.method_refine(e, src))
    else:
        done = run_in_jobs(pairs)
    out = []
    for e in entries:
        runs, speed, options = [], {}, _options(e)
        for (entry, src), rec in zip(pairs, done):
            if entry is not e:
                continue
            analysis = steps.analyse(src["results"], rec["refined"], ap_impact=False)
            runs.append(run_of(e["name"], 0, src["name"], {"summary": {}, "checkpoint": ""}, rec["refined"],
                               analysis))
            speed[src["name"]] = {k: rec.get(k) for k in ("seconds", "persons", "samples_per_s")}
            options = rec.get("options", options)
        metrics = method_metrics(profile=steps.profile.name, name=e["name"], type=e["type"], options=options,
                                 runs=runs, speed=speed)
        out.append(MethodResult(name=e["name"], type=e["type"], options=options, runs=runs, metrics=metrics,
                                speed=speed))
    return out
