"""Error mixes: the paper table as published, the named and scaled mixes, profiles as mixes, other schemas."""

import json

import numpy as np
import pytest

from posefix_bench.codecs.taxonomy import ERROR_TYPES, O_BINS, V_BINS
from posefix_bench.errors import PosefixError
from posefix_bench.structures.schema import COCO17, CROWDPOSE14, MPII16
from posefix_bench.synthesis.error_profile import ErrorProfile
from posefix_bench.synthesis.mixes import NAMED_MIXES, get_mix

G, J, I, S, M = range(5)  # class columns
V_ALL = np.array([3, 5, 6, 10, 11, 15, 16, 17, 3, 8, 12, 16])
O_ALL = np.array([0, 1, 0, 2, 3, 3, 3, 0, 4, 0, 1, 5])


def _p(name, v, o, schema=COCO17):
    return get_mix(name, schema).probabilities(np.array([v]), np.array([o]))[0]


def test_paper_table_values_as_published():
    k = COCO17.index
    # V <= 5, nobody overlapping
    p = _p("paper", 4, 0)
    assert p[k("nose"), J] == 0.15 and p[k("left_eye"), J] == 0.20 and p[k("left_hip"), J] == 0.25
    assert p[k("nose"), M] == 0.15 and p[k("left_shoulder"), M] == 0.20 and p[k("right_ankle"), M] == 0.20
    assert p[k("left_elbow"), M] == 0.25 and p[k("right_knee"), M] == 0.25
    assert p[k("left_ear"), I] == 0.01 and p[k("left_wrist"), I] == 0.03 and p[k("left_knee"), I] == 0.06
    assert p[k("nose"), S] == 0.01 and p[k("left_elbow"), S] == 0.06 and p[k("left_ankle"), S] == 0.03
    # V <= 10 with an overlapping person: crowded swap row, middle miss row
    p = _p("paper", 8, 1)
    assert p[k("left_eye"), S] == 0.02 and p[k("right_wrist"), S] == 0.15 and p[k("right_hip"), S] == 0.10
    assert p[k("nose"), M] == 0.10 and p[k("left_shoulder"), M] == 0.13 and p[k("left_hip"), M] == 0.15
    # V in 11..15 counts as crowded only with O >= 3; V > 10 rows for jitter and miss
    assert _p("paper", 14, 2)[k("left_wrist"), S] == 0.06
    assert _p("paper", 14, 3)[k("left_wrist"), S] == 0.15
    assert _p("paper", 16, 3)[k("left_wrist"), S] == 0.06
    p = _p("paper", 17, 0)
    assert p[k("left_knee"), J] == 0.10 and p[k("left_elbow"), J] == 0.15 and p[k("right_hip"), J] == 0.20
    assert p[k("nose"), M] == 0.02 and p[k("left_ankle"), M] == 0.05 and p[k("left_wrist"), M] == 0.10
    np.testing.assert_allclose(p[k("left_hip"), G], 1 - 0.20 - 0.10 - 0.06 - 0.03)


@pytest.mark.parametrize("name", list(NAMED_MIXES))
def test_named_mixes_are_distributions(name):
    p = get_mix(name, COCO17).probabilities(V_ALL, O_ALL)
    assert p.shape == (len(V_ALL), 17, len(ERROR_TYPES))
    assert (p >= 0).all() and (p <= 1).all()
    np.testing.assert_allclose(p.sum(-1), 1.0)


def test_named_mix_definitions():
    paper = get_mix("paper", COCO17).probabilities(V_ALL, O_ALL)
    err = 1 - paper[..., G]
    assert (get_mix("none", COCO17).probabilities(V_ALL, O_ALL)[..., G] == 1).all()
    for c, name in enumerate(ERROR_TYPES[1:], start=1):  # single-type: the paper's error mass, all of one type
        p = get_mix(name, COCO17).probabilities(V_ALL, O_ALL)
        np.testing.assert_allclose(p[..., c], err)
        assert (np.delete(p, [G, c], axis=-1) == 0).all()
    p = get_mix("no-swap", COCO17).probabilities(V_ALL, O_ALL)
    assert (p[..., S] == 0).all() and np.allclose(p[..., [J, I, M]], paper[..., [J, I, M]])
    np.testing.assert_allclose(p[..., G], paper[..., G] + paper[..., S])
    p = get_mix("no-inversion", COCO17).probabilities(V_ALL, O_ALL)
    assert (p[..., I] == 0).all() and np.allclose(p[..., S], paper[..., S])
    p = get_mix("jitter-only", COCO17).probabilities(V_ALL, O_ALL)
    assert np.allclose(p[..., J], paper[..., J]) and (p[..., [I, S, M]] == 0).all()
    p = get_mix("miss-heavy", COCO17).probabilities(V_ALL, O_ALL)
    np.testing.assert_allclose(p[..., M], 2 * paper[..., M])


def test_dict_and_json_specs_scale_and_name():
    paper = get_mix("paper", COCO17).probabilities(V_ALL, O_ALL)
    mix = get_mix({"base": "paper", "scale": {"swap": 2.0}}, COCO17)
    assert mix.name == "paper+swap*2"
    np.testing.assert_allclose(mix.probabilities(V_ALL, O_ALL)[..., S], 2 * paper[..., S])
    same = get_mix('{"base": "paper", "scale": {"swap": 2}}', COCO17)
    assert same.name == mix.name and same.spec() == mix.spec()
    # scaling on top of a named mix, and a total error mass above 1 renormalised (good = 0)
    heavy = get_mix({"base": "miss", "scale": {"miss": 100}, "name": "all-miss"}, COCO17)
    assert heavy.name == "all-miss" and "all errors as miss" in heavy.describe()
    p = heavy.probabilities(V_ALL, O_ALL)
    np.testing.assert_allclose(p[..., M], 1.0)
    assert get_mix("miss-heavy", COCO17).spec() != get_mix("paper", COCO17).spec()


@pytest.mark.parametrize("spec, words", [
    ("nonsense", "unknown error mix 'nonsense'"),
    ({"base": "paper", "scale": {"swap": -1}}, "finite number >= 0"),
    ({"base": "paper", "scale": {"good": 2}}, "cannot scale 'good'"),
    ({"base": "paper", "only": "good"}, "'only' must be one of"),
    ({"base": "paper", "colour": 1}, "unknown key 'colour'"),
    ({"base": "paper", "min_count": 5}, "error-profile bases only"),
    ("{not json", "not valid JSON"),
    ({"scale": {"swap": 2}}, "'base' must be"),
])
def test_bad_specs_raise_one_line(spec, words):
    with pytest.raises(PosefixError) as e:
        get_mix(spec, COCO17)
    assert words in str(e.value) and "\n" not in str(e.value)


def _profile(schema, seed=0):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 40, size=(len(V_BINS), len(O_BINS), schema.num_keypoints, len(ERROR_TYPES)))
    counts[0, 2] = 0  # an empty cell: backs off
    return ErrorProfile(schema.name, schema.keypoints, counts, np.zeros(counts.shape[:3], np.int64))


def test_profile_as_a_mix(tmp_path):
    prof = _profile(COCO17)
    path = tmp_path / "prof.json"
    prof.save(path)
    mix = get_mix(str(path), COCO17)
    assert mix.name.startswith("profile:prof@") and mix.base == "profile"
    assert mix.spec()["profile_digest"] in mix.name
    table = prof.probabilities()
    v = np.array([2, 7, 17, 4])
    o = np.array([0, 2, 5, 3])
    np.testing.assert_allclose(mix.probabilities(v, o), table[[0, 1, 2, 0], [0, 1, 2, 2]])
    assert np.isfinite(mix.probabilities(v, o)).all()
    # min_count and scaling on a profile base
    m2 = get_mix({"base": str(path), "min_count": 1000, "scale": {"swap": 0}}, COCO17)
    p2 = m2.probabilities(v, o)
    assert (p2[..., S] == 0).all() and m2.name != mix.name
    # the name follows the content, not the path
    other = tmp_path / "copy" / "prof.json"
    prof.save(other)
    assert get_mix(str(other), COCO17).name == mix.name


def test_profile_without_support_is_refused(tmp_path):
    """Measured on zero persons (or nothing matched): as a mix it would back off to all-good, i.e. perfect poses."""
    prof = _profile(COCO17)
    empty = ErrorProfile(prof.schema, prof.keypoints, np.zeros_like(prof.counts), prof.absent + 3)
    path = tmp_path / "empty.json"
    empty.save(path)
    for spec in (str(path), {"base": str(path), "scale": {"swap": 2}}):
        with pytest.raises(PosefixError, match="empty.json: error profile has no support"):
            get_mix(spec, COCO17)


def test_profile_for_another_schema_is_refused(tmp_path):
    path = tmp_path / "cp.json"
    _profile(CROWDPOSE14).save(path)
    with pytest.raises(PosefixError, match="cp.json: error profile is for the 14 keypoints"):
        get_mix(str(path), COCO17)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(PosefixError, match="bad.json: not an error profile"):
        get_mix(str(bad), COCO17)
    with pytest.raises(PosefixError, match="missing.json"):
        get_mix(str(tmp_path / "missing.json"), COCO17)


def test_other_schemas_map_by_name_then_group():
    coco = _p("paper", 8, 1)
    cp = _p("paper", 8, 1, CROWDPOSE14)
    for name in ("left_shoulder", "right_wrist", "left_hip", "right_ankle"):
        np.testing.assert_array_equal(cp[CROWDPOSE14.index(name)], coco[COCO17.index(name)])
    face = coco[list(COCO17.groups["face"])].mean(axis=0)  # top_head and neck are in CrowdPose's "face" group
    np.testing.assert_allclose(cp[CROWDPOSE14.index("top_head")], face)
    np.testing.assert_allclose(cp[CROWDPOSE14.index("neck")], face)
    mp = _p("paper", 8, 1, MPII16)
    lower = coco[list(COCO17.groups["lower"])].mean(axis=0)
    np.testing.assert_allclose(mp[MPII16.index("pelvis")], lower)
    np.testing.assert_array_equal(mp[MPII16.index("left_knee")], coco[COCO17.index("left_knee")])
    with pytest.raises(PosefixError, match="for schema coco17, not crowdpose14"):
        get_mix(get_mix("paper", COCO17), CROWDPOSE14)
