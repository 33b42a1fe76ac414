"""Estimator cards: the zoo cards agree with mmpose's own metafiles, and bad cards are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from posefix_bench.errors import PosefixError
from posefix_bench.sources.cards import discover_cards, estimators_dir, load_card, mmpose_configs_dir

RES50 = "body_2d_keypoint/topdown_heatmap/coco/td-hm_res50_8xb64-210e_coco-256x192.py"


@pytest.fixture(scope="module")
def cards():
    return discover_cards()


def _metafile_entry(mmpose_config: str) -> dict:
    """The wheel's model-index entry (``*.yml`` beside the config) for a config."""
    folder = (mmpose_configs_dir() / mmpose_config).parent
    for yml in sorted(folder.glob("*.yml")):
        for model in yaml.safe_load(yml.read_text()).get("Models", []):
            if model.get("Config", "").endswith(mmpose_config):
                return model
    raise AssertionError(f"no metafile entry for {mmpose_config}")


def test_required_families_are_carded(cards):
    zoo = {c.mmpose_config.rsplit("/", 1)[-1] for c in cards.values() if not c.is_sandbox}
    assert {"td-hm_res50_8xb64-210e_coco-256x192.py", "td-hm_hrnet-w32_8xb64-210e_coco-256x192.py",
            "rtmpose-m_8xb256-420e_coco-256x192.py"} < zoo  # plus at least one more
    assert len([c for c in cards.values() if c.is_sandbox]) == 3  # SimpleBaseline at 64x48 (quick) and 128x96 (ladder), RTMPose-t
    assert len({c.family for c in cards.values() if c.is_sandbox}) == 2


def test_zoo_cards_match_the_mmpose_metafiles(cards):
    for card in cards.values():
        if card.is_sandbox:
            continue
        text = card.path.read_text()
        assert "checkpoint" not in text.split("card = dict", 1)[1] and "published" not in text.split("card =", 1)[1], \
            f"{card.path}: a zoo card's checkpoint and published accuracy are read from the metafile, not restated"
        entry = _metafile_entry(card.mmpose_config)
        assert card.checkpoint == entry["Weights"], card.name
        metrics = entry["Results"][0]["Metrics"]
        for key, meta_key in (("AP", "AP"), ("AP50", "AP@0.5"), ("AP75", "AP@0.75"), ("AR", "AR"), ("AR50", "AR@0.5")):
            assert card.published[key] == metrics[meta_key], (card.name, key)
        assert "56.4" in card.published["detector"] and card.published["dataset"] == "COCO val2017"
        assert card.published["source"].startswith("https://github.com/open-mmlab/mmpose/blob/main/configs/")
        assert card.published["source"].endswith("_coco.md") and card.published["metafile"].endswith("_coco.yml")
        size = card.mmpose_config.rsplit("-", 1)[-1].removesuffix(".py")  # e.g. 256x192 (height x width)
        assert f"{card.input_size[1]}x{card.input_size[0]}" == size


def test_only_a_card_that_changes_nothing_gets_the_published_weights(tmp_path):
    zoo = load_card(_card(tmp_path / "zoo"))
    assert zoo.checkpoint == _metafile_entry(RES50)["Weights"] and zoo.published["AP"] == 0.718 and not zoo.is_sandbox
    # an override of the official config (here the schedule) makes it a model trained here: no published weights
    changed = load_card(_card(tmp_path / "changed", body="train_cfg = dict(_delete_=True, by_epoch=False, max_iters=20)"))
    assert changed.checkpoint is None and changed.published is None and changed.is_sandbox
    # an override in a local base counts too
    (tmp_path / "based").mkdir()
    (tmp_path / "based" / "_shared_.py").write_text(f"_base_ = ['mmpose::{RES50}']\nmodel = dict(test_cfg=dict())\n")
    (tmp_path / "based" / "card.py").write_text("_base_ = ['./_shared_.py']\ncard = dict(name='x', family='y')\n")
    assert load_card(tmp_path / "based" / "card.py").checkpoint is None
    # what a card states itself is taken as written
    own = load_card(_card(tmp_path / "own", checkpoint="/weights/mine.pth"))
    assert own.checkpoint == "/weights/mine.pth" and own.published["AP"] == 0.718


def test_a_zoo_card_the_metafiles_do_not_list_needs_its_checkpoint(tmp_path):
    unlisted = "body_2d_keypoint/topdown_heatmap/coco/td-hm-vis_res50_8xb64-210e_coco-aic-256x192-merge.py"
    path = _card(tmp_path, base=unlisted)
    with pytest.raises(PosefixError, match="no mmpose metafile lists") as e:
        load_card(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    path = _card(tmp_path, base=unlisted, checkpoint="/weights/merged.pth")
    assert load_card(path).checkpoint == "/weights/merged.pth" and load_card(path).published is None


def test_sandbox_cards_are_small_iteration_schedules(cards):
    for card in cards.values():
        if card.is_sandbox:
            assert card.input_size in ((48, 64), (96, 128))
            assert card.config.train_cfg.by_epoch is False and card.config.train_cfg.max_iters > 0
            assert card.config.model.backbone.init_cfg is None
            assert card.path.parent.name == "sandbox"


def test_the_sandbox_heatmap_card_is_a_standard_ladder(cards):
    card = cards["sandbox-simplebaseline-r18-128x96"]
    assert card.mmpose_config == RES50 and card.family == "SimpleBaseline"
    assert len(card.ladder) >= 3 and card.ladder[-1] == card.config.train_cfg.max_iters
    # trained with the standard (quantised) MSRA encoding, as the official config: DARK stays a test-time option
    assert card.config.model.head.decoder.type == "MSRAHeatmap"
    assert card.config.model.head.decoder.get("unbiased", False) is False
    assert card.config.train_pipeline[-2].encoder.get("unbiased", False) is False


def _card(tmp_path: Path, base: str = RES50, body: str = "", **fields) -> Path:
    meta = dict(name="test-card", family="SimpleBaseline")
    meta.update(fields)
    items = ", ".join(f"{k}={v!r}" for k, v in meta.items())
    text = f"_base_ = ['mmpose::{base}']\n{body}\ncard = dict({items})\n"
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "card.py"
    path.write_text(text)
    return path


@pytest.mark.parametrize("kwargs, message", [
    (dict(base="body_2d_keypoint/topdown_heatmap/coco/nope.py",
          mmpose_config="body_2d_keypoint/topdown_heatmap/coco/nope.py"), "not found in the installed mmpose"),
    (dict(input_size=(48, 64)), "differs from the test pipeline"),
    (dict(mmpose_config="body_2d_keypoint/rtmpose/coco/rtmpose-m_8xb256-420e_coco-256x192.py"),
     "is not the mmpose:: config its _base_ leads to"),
    (dict(body="model = dict(backbone=dict(depth=", name="x"), "not a valid Python config"),
    (dict(ladder=(50, 20)), "ladder must be increasing iterations"),
    (dict(ladder=(10, 20)), "needs an iteration-based schedule"),
    (dict(body="train_cfg = dict(_delete_=True, by_epoch=False, max_iters=15)", ladder=(10, 20)),
     "needs an iteration-based schedule reaching 20"),
])
def test_bad_cards_are_one_line_errors(tmp_path, kwargs, message):
    path = _card(tmp_path, **kwargs)
    with pytest.raises(PosefixError, match=message) as e:
        load_card(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_card_without_card_dict_or_key(tmp_path):
    path = tmp_path / "c.py"
    path.write_text(f"_base_ = ['mmpose::{RES50}']\n")
    with pytest.raises(PosefixError, match="not an estimator card"):
        load_card(path)
    path.write_text(f"_base_ = ['mmpose::{RES50}']\ncard = dict(name='x', description='y')\n")
    with pytest.raises(PosefixError, match="card lacks family"):
        load_card(path)
    with pytest.raises(PosefixError, match="not found"):
        load_card(tmp_path / "missing.py")


def test_mmpose_config_and_input_size_come_from_the_base_chain(tmp_path):
    (tmp_path / "_shared_.py").write_text(f"_base_ = ['mmpose::{RES50}']\n")
    path = tmp_path / "card.py"
    path.write_text("_base_ = ['./_shared_.py']\ncard = dict(name='x', family='y', ladder=(10, 20))\n"
                    "train_cfg = dict(_delete_=True, by_epoch=False, max_iters=20)\n")
    card = load_card(path)
    assert card.mmpose_config == RES50 and card.input_size == (192, 256) and card.ladder == (10, 20)
    (tmp_path / "_shared_.py").write_text("model = dict(type='TopdownPoseEstimator')\n")
    with pytest.raises(PosefixError, match=r"_base_ must lead to exactly one mmpose:: config .* it leads to none"):
        load_card(path)
    (tmp_path / "_shared_.py").write_text("_base_ = ['./card.py']\n")
    with pytest.raises(PosefixError, match="include each other"):
        load_card(path)


def test_estimators_folder_from_the_environment(tmp_path, monkeypatch):
    _card(tmp_path)
    monkeypatch.setenv("POSEFIX_ESTIMATORS", str(tmp_path))
    assert estimators_dir() == tmp_path
    found = discover_cards()
    assert list(found) == ["test-card"] and found["test-card"].checkpoint == _metafile_entry(RES50)["Weights"]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "again.py").write_text((tmp_path / "card.py").read_text())
    with pytest.raises(PosefixError, match="card name 'test-card' is also used"):
        discover_cards()
