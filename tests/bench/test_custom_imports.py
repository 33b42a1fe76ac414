"""``custom_imports`` in a profile (issue 28): user modules register sources (or methods, backbones) without
editing the package, and their code is part of the cache keys."""

from pathlib import Path

import pytest

from posefix_bench.bench.profile import load_profile
from posefix_bench.bench.step_codes import SOURCE_CODE
from posefix_bench.bench.steps import BenchSteps
from posefix_bench.errors import PosefixError
from posefix_bench.sources.registry import SOURCES, unregister_source
from posefix_bench.structures.results import load_results

REPO = Path(__file__).resolve().parents[2]

MODULE = '''
"""A user's source: the ground truth shifted by a few pixels."""
from posefix_bench.sources import register_source
from posefix_bench.sources.base import Source, SourceInfo


class ShiftedTruth(Source):
    def __init__(self, dx=0.0):
        self.dx = float(dx)
        self.info = SourceInfo(name="shifted-truth", kind="synthetic", description="ground truth + dx")

    def predict(self, dataset, boxes=None, progress=None):
        out = []
        for image_id, ann in dataset.persons():
            kps = [v + self.dx if i % 3 == 0 else v for i, v in enumerate(ann["keypoints"])]
            out.append({"image_id": image_id, "category_id": dataset.category_id, "keypoints": kps, "score": 1.0})
        return out


register_source("shifted-truth", ShiftedTruth)
'''


def user_profile(tmp_path: Path, imports: str) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "_profile_.py").write_text(
        f"profile = dict(name='mine', data=dict(kind='coco-mini'), custom_imports=dict(imports={imports}),\n"
        "    sources=[dict(name='truth', type='shifted-truth', dx=4.0)])\n")
    (folder / "r18.py").write_text(f"_base_ = ['{REPO / 'ablations' / '_base_' / 'quick.py'}']\n"
                                   "data = dict(sandbox=None)\n")
    return folder


@pytest.fixture
def user_package(tmp_path, monkeypatch):
    pkg = tmp_path / "user_pkg_28"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "my_sources.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield pkg
    unregister_source("shifted-truth")
    import sys

    for name in ("user_pkg_28.my_sources", "user_pkg_28"):
        sys.modules.pop(name, None)


def test_a_profile_imports_a_user_source_and_its_code_keys_the_steps(tmp_path, coco_mini_root, val_gt, user_package):
    profile = load_profile(user_profile(tmp_path, "['user_pkg_28.my_sources']"))
    assert "shifted-truth" in SOURCES.module_dict
    steps = BenchSteps(profile, tmp_path / "cache", coco_root=coco_mini_root)
    rec = steps.predict(profile.sources[0])
    results = load_results(rec["results"], val_gt)
    persons = list(val_gt.persons())
    assert rec["poses"] == len(persons) == len(results)
    assert results[0]["keypoints"][0] == pytest.approx(persons[0][1]["keypoints"][0] + 4.0)
    # the user's code is in the fingerprint: an edit reruns the step (a new key), as an edit of the package does
    before = steps.code(SOURCE_CODE)
    (user_package / "my_sources.py").write_text(MODULE + "\n# tuned\n")
    again = BenchSteps(profile, tmp_path / "cache", coco_root=coco_mini_root)
    assert again.code(SOURCE_CODE) != before
    assert again.predict(profile.sources[0])["results"] != rec["results"]


def test_a_module_that_cannot_be_imported_is_one_line(tmp_path):
    with pytest.raises(PosefixError, match=r"_profile_.py: custom_imports: cannot import 'no_such_module_28' "
                                           r"\(ModuleNotFoundError"):
        load_profile(user_profile(tmp_path, "['no_such_module_28']"))


def test_without_custom_imports_the_code_fingerprint_is_the_packages(tmp_path):
    from posefix_bench.bench.cache import code_fingerprint

    profile = load_profile("coco-mini")
    assert BenchSteps(profile, tmp_path / "cache").code(SOURCE_CODE) == code_fingerprint(SOURCE_CODE)


def test_a_user_backbone_trains_under_a_key_that_holds_its_code(tmp_path, monkeypatch, coco_mini_root):
    from posefix_bench.models.backbones import BACKBONES, build_backbone

    module = tmp_path / "user_backbone_28.py"
    module.write_text("from posefix_bench.models.backbones import BACKBONES, ResNetBackbone\n"
                      "BACKBONES.register_module(name='user-r18-28', module=lambda c: ResNetBackbone('resnet18', c))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "_profile_.py").write_text(
        "profile = dict(name='mine', data=dict(kind='coco-mini'), custom_imports=dict(imports=['user_backbone_28']),"
        " sources=[dict(name='syn', type='synthetic')])\n")
    (folder / "r18.py").write_text(f"_base_ = ['{REPO / 'ablations' / '_base_' / 'quick.py'}']\n"
                                   "model = dict(backbone='user-r18-28')\n"
                                   "data = dict(sandbox=None)\ntrain = dict(amp='fp32')\n")
    try:
        profile = load_profile(folder)
        assert build_backbone("user-r18-28", 20) is not None
        key = BenchSteps(profile, tmp_path / "cache", coco_root=coco_mini_root).train_step(profile.ablations[0], 0)[0]
        module.write_text(module.read_text() + "# changed\n")
        again = BenchSteps(profile, tmp_path / "cache", coco_root=coco_mini_root).train_step(profile.ablations[0], 0)
        assert again[0].key != key.key
    finally:
        BACKBONES.module_dict.pop("user-r18-28", None)
        import sys

        sys.modules.pop("user_backbone_28", None)
