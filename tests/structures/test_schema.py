import numpy as np
import pytest

from posefix_bench.errors import PosefixError
from posefix_bench.structures.schema import COCO17, CROWDPOSE14, MPII16, SCHEMAS, KeypointSchema, get_schema


def test_coco17_matches_pycocotools_and_dataset(val_gt):
    from pycocotools.cocoeval import Params

    p = Params(iouType="keypoints")
    np.testing.assert_array_equal(COCO17.sigma_array, p.kpt_oks_sigmas)
    cat = val_gt.category
    assert tuple(cat["keypoints"]) == COCO17.keypoints
    assert [[a + 1, b + 1] for a, b in COCO17.skeleton] == cat["skeleton"]
    assert val_gt.schema is COCO17


def test_coco17_flip_pairs_and_groups():
    assert COCO17.flip_pairs == ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))
    assert COCO17.flip_index[0] == 0 and COCO17.flip_index[1] == 2 and COCO17.flip_index[16] == 15
    assert not COCO17.has_partner[0] and COCO17.has_partner[1:].all()
    assert dict(COCO17.groups) == {"face": (0, 1, 2, 3, 4), "upper": tuple(range(5, 11)),
                                   "lower": tuple(range(11, 17))}
    assert list(COCO17.group_index()) == [0] * 5 + [1] * 6 + [2] * 6


@pytest.mark.parametrize("schema,meta_file", [(CROWDPOSE14, "crowdpose.py"), (MPII16, "mpii.py")])
def test_other_schemas_match_mmpose_metainfo(schema, meta_file):
    """Names, sigmas and flip pairs agree with the dataset metainfo mmpose ships."""
    from pathlib import Path

    import mmpose
    from mmengine.config import Config

    path = Path(mmpose.__file__).parent / ".mim" / "configs" / "_base_" / "datasets" / meta_file
    info = Config.fromfile(str(path)).dataset_info
    names = [info.keypoint_info[i]["name"] for i in range(len(info.keypoint_info))]
    assert tuple(names) == schema.keypoints
    np.testing.assert_allclose(info.sigmas, schema.sigmas)
    mm_pairs = set()
    for i, kp in info.keypoint_info.items():
        if kp["swap"]:
            j = names.index(kp["swap"])
            mm_pairs.add((min(i, j), max(i, j)))
    assert mm_pairs == {tuple(sorted(p)) for p in schema.flip_pairs}


def test_from_category_roundtrip_and_custom():
    assert KeypointSchema.from_coco_category(CROWDPOSE14.to_coco_category()) is CROWDPOSE14
    custom = {"id": 1, "name": "hand", "keypoints": ["wrist", "left_tip", "right_tip"],
              "skeleton": [[1, 2], [1, 3]], "sigmas": [0.05, 0.03, 0.03]}
    s = KeypointSchema.from_coco_category(custom)
    assert s.num_keypoints == 3 and s.flip_pairs == ((1, 2),) and s.skeleton == ((0, 1), (0, 2))
    assert dict(s.groups) == {"all": (0, 1, 2)}


def test_bad_schemas_are_one_line_errors():
    with pytest.raises(PosefixError, match="no 'sigmas'"):
        KeypointSchema.from_coco_category({"id": 3, "keypoints": ["a", "b"]}, source="x.json")
    with pytest.raises(PosefixError, match="2 sigmas for 3 keypoints"):
        KeypointSchema("bad", ("a", "b", "c"), (0.1, 0.1))
    with pytest.raises(PosefixError, match="unknown keypoint schema"):
        get_schema("nope")
    assert set(SCHEMAS) == {"coco17", "crowdpose14", "mpii16"}
