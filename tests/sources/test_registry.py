"""The source registry: listing, lookup errors, registration, and the results-file / synthetic sources."""

from __future__ import annotations

import json

import pytest
from helpers import noisy_results

from posefix_bench.errors import PosefixError
from posefix_bench.sources import Source, SourceInfo, get_source, list_sources, register_source, unregister_source
from posefix_bench.structures.results import validate_results


def test_list_has_four_mmpose_estimators_and_the_other_kinds():
    infos = {i.name: i for i in list_sources()}
    assert {"mediapipe", "results-file", "synthetic"} <= set(infos)
    zoo = [i for i in infos.values() if i.kind == "mmpose" and i.published]
    assert len(zoo) >= 4 and all(i.trained and i.weights.startswith("https://") for i in zoo)
    assert all(i.published["AP"] > 0.6 and i.input_size for i in zoo)
    sandbox = [i for i in infos.values() if i.kind == "mmpose" and not i.published]
    assert len(sandbox) == 3 and not any(i.trained for i in sandbox)  # no weights until trained here
    assert infos["mediapipe"].weights.endswith("pose_landmark_full.tflite")
    json.dumps([i.to_record() for i in infos.values()])  # plain records


def test_unknown_name_and_option_are_one_line_errors():
    with pytest.raises(PosefixError, match=r"unknown source 'nope' \(known: mediapipe, results-file, synthetic, .*"
                                           r"hrnet-w32-256x192"):
        get_source("nope")
    with pytest.raises(PosefixError, match="source 'rtmpose-m-256x192': unknown option 'weights'"):
        get_source("rtmpose-m-256x192", weights="x.pth")
    with pytest.raises(PosefixError, match="either a checkpoint or untrained"):
        get_source("rtmpose-m-256x192", checkpoint="x.pth", untrained=True)
    with pytest.raises(PosefixError, match="no checkpoint"):
        get_source("sandbox-rtmpose-t-64x48")


def test_register_a_source(val_gt):
    class Echo(Source):
        def __init__(self, records=()):
            self.records = list(records)
            self.info = SourceInfo(name="echo", kind="refined", description="returns what it was given")

        def predict(self, dataset, boxes=None, progress=None):
            return list(self.records)

    register_source("echo", Echo, info=SourceInfo(name="echo", kind="refined"))
    try:
        assert "echo" in [i.name for i in list_sources()]
        records = noisy_results(val_gt, seed=1)
        assert get_source("echo", records=records).predict(val_gt) == records
        with pytest.raises(PosefixError, match="already registered"):
            register_source("echo", Echo)
        with pytest.raises(PosefixError, match="built in"):
            register_source("mediapipe", Echo)
    finally:
        unregister_source("echo")
    with pytest.raises(PosefixError, match="unknown source 'echo'"):
        get_source("echo")


def test_results_file_source_validates_against_the_dataset(tmp_path, val_gt):
    records = noisy_results(val_gt, seed=3)
    path = tmp_path / "res.json"
    path.write_text(json.dumps(records))
    src = get_source("results-file", path=path)
    assert src.predict(val_gt) == validate_results(records)
    with pytest.raises(PosefixError, match="needs path"):
        get_source("results-file")
    bad = [dict(records[0], image_id=999999999)]
    path.write_text(json.dumps(bad))
    with pytest.raises(PosefixError, match="absent from"):
        get_source("results-file", path=path).predict(val_gt)


def test_synthetic_source_is_seeded(val_gt):
    a = get_source("synthetic", mix="paper", seed=4).predict(val_gt)
    b = get_source("synthetic", mix="paper", seed=4).predict(val_gt)
    c = get_source("synthetic", mix="paper", seed=5).predict(val_gt)
    assert a == b and a != c
    assert len(a) == sum(1 for _ in val_gt.persons(min_keypoints=1))
    validate_results(a, num_keypoints=val_gt.schema.num_keypoints, image_ids=val_gt.image_ids)


def test_sources_live_in_an_mmengine_registry_and_a_shadowed_builtin_comes_back():
    from mmengine.registry import Registry

    from posefix_bench.sources.registry import SOURCES

    builtin = get_source("results-file", path="x.json")
    assert isinstance(SOURCES, Registry) and {"mediapipe", "results-file", "synthetic"} <= set(SOURCES.module_dict)
    assert not any(name.startswith("rtmpose") for name in SOURCES.module_dict)  # cards are discovered, not registered

    class Stub(Source):
        def __init__(self, path=None):
            self.info = SourceInfo(name="results-file", kind="results-file")

        def predict(self, dataset, boxes=None, progress=None):
            return []

    register_source("results-file", Stub, replace=True)
    try:
        assert isinstance(get_source("results-file"), Stub)
    finally:
        unregister_source("results-file")
    assert type(get_source("results-file", path="x.json")) is type(builtin)
    with pytest.raises(PosefixError, match=r"unknown source 'json' \(known: mediapipe"):
        get_source("json")  # only registered names, never an import path
