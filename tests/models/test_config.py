"""RefinerConfig: published defaults, JSON round trip, one-line errors for bad settings."""

import json

import pytest

from posefix_bench.errors import PosefixError
from posefix_bench.models import RefinerConfig, build_refiner, default_sigma


def test_published_defaults_and_derived_sizes():
    c = RefinerConfig()
    assert (c.backbone, c.head, c.input_size, c.num_keypoints) == ("resnet50", "posefix", (192, 256), 17)
    assert c.sigma == 7.0 and c.stride == 4 and c.output_size == (48, 64) and c.in_channels == 20
    assert RefinerConfig(input_size=(288, 384)).sigma == 9.0
    assert default_sigma((48, 64)) == 1.75 and default_sigma((96, 128)) == 3.5
    assert (RefinerConfig(prior_form="log").prior_weight, RefinerConfig(prior_form="linear").prior_weight) == (1.0, 10.0)
    assert RefinerConfig(schema="crowdpose14").num_keypoints == 14


def test_json_round_trip():
    c = RefinerConfig(backbone="resnet18", head="prior+skip", input_size=[48, 64], sigma=2.0)
    back = RefinerConfig.from_dict(json.loads(json.dumps(c.to_dict())))
    assert back == c and back.input_size == (48, 64)


@pytest.mark.parametrize("settings,message", [
    (dict(input_size=(50, 64)), "multiple of the output stride 4"),
    (dict(input_size=(16, 16)), "at least 32"),
    (dict(num_deconv=4), "num_deconv"),
    (dict(prior_form="cubic"), "prior_form"),
    (dict(schema="custom"), "give num_keypoints"),
    (dict(schema="coco17", num_keypoints=14), "17 keypoints"),
    (dict(learning_rate=1.0), "unknown refiner setting"),
])  # fmt: skip
def test_bad_settings_are_one_line_errors(settings, message):
    with pytest.raises(PosefixError, match=message) as e:
        RefinerConfig.from_dict(settings, source="cfg.py")
    assert "\n" not in str(e.value) and str(e.value).startswith("cfg.py: ")


@pytest.mark.parametrize("settings,message", [
    (dict(backbone="vgg16"), "unknown refiner backbone 'vgg16'"),
    (dict(head="transformer"), "unknown refiner head 'transformer'"),
])  # fmt: skip
def test_unknown_names_fail_at_build(settings, message):
    with pytest.raises(PosefixError, match=message):
        build_refiner({**settings, "input_size": (48, 64)})
