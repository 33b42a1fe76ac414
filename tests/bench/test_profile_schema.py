"""The typed profile schema (issue 28): unknown keys fail at load with the nearest known key, every section is read
through the schema, and the cross-section checks run before any work."""

from pathlib import Path

import pytest

from posefix_bench.bench.profile import list_profiles, load_profile
from posefix_bench.bench.profile_schema import SECTIONS
from posefix_bench.cli import main
from posefix_bench.errors import PosefixError

REPO = Path(__file__).resolve().parents[2]
QUICK = REPO / "ablations" / "_base_" / "quick.py"
SOURCES = "sources=[dict(name='syn', type='synthetic'), dict(name='mine', type='results-file', path='r.json')]"


def write_profile(folder: Path, extra: str = "", data: str = "dict(kind='coco-mini')", sources: str = SOURCES,
                  ablation: str = "data = dict(sandbox=None)\n") -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "_profile_.py").write_text(f"profile = dict(name='p', data={data}, {sources}{extra})\n")
    (folder / "r18.py").write_text(f"_base_ = ['{QUICK}']\n{ablation}")
    return folder


@pytest.mark.parametrize("name", list_profiles())
def test_every_shipped_profile_passes_its_schema(name):
    profile = load_profile(name)
    assert profile.sources and profile.ablations
    assert profile.section("gate") == (profile.sections.get("gate") or {})


@pytest.mark.parametrize("extra, key, near", [
    (", default_ablaton='r18'", "default_ablaton", "did you mean 'default_ablation'?"),
    (", gate=dict(calibrat_on='profile')", "calibrat_on", "in profile.gate (did you mean 'calibrate_on'?)"),
    (", comparisons=[dict(name='x', tag='t', questoin='?')]", "questoin", "did you mean 'question'?"),
])
def test_an_unknown_key_names_the_file_and_the_nearest_known_key(tmp_path, extra, key, near):
    folder = write_profile(tmp_path / "p", extra)
    with pytest.raises(PosefixError) as e:
        load_profile(folder)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(folder / "_profile_.py")) and f"unknown key {key!r}" in msg
    assert near in msg


def test_a_misspelt_section_fails_the_bench_command_in_one_line(tmp_path, capsys):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "_profile_.py").write_text(
        "profile = dict(name='p', data=dict(kind='sandbox'), sourcse=[dict(name='a', type='synthetic')])\n")
    (tmp_path / "p" / "r18.py").write_text(f"_base_ = ['{QUICK}']\n")
    assert main(["bench", "--profile", str(tmp_path / "p"), "--cache", str(tmp_path / "cache"),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown key 'sourcse'" in err and "did you mean 'sources'?" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache" / "train").exists()


def test_a_section_of_the_wrong_type_or_an_unknown_bench_key(tmp_path):
    with pytest.raises(PosefixError, match=r"profile.gate must be a dict, not list"):
        load_profile(write_profile(tmp_path / "a", ", gate=['mine']"))
    with pytest.raises(PosefixError, match=r"r18.py: unknown key 'tag' in bench \(did you mean 'tags'\?\)"):
        load_profile(write_profile(tmp_path / "b", ablation="data = dict(sandbox=None)\nbench = dict(tag=['x'])\n"))


def test_the_sections_of_parallel_issues_are_known():
    """``methods`` (issue 26) and ``bootstrap`` (issue 27) load today, so their branches only fill them in."""
    assert SECTIONS["methods"].item_required == ("name", "type") and SECTIONS["bootstrap"].type is dict


def test_methods_and_bootstrap_sections_load(tmp_path):
    folder = write_profile(tmp_path / "p", ", methods=[dict(name='id', type='identity')], "
                                           "bootstrap=dict(resamples=200, seed=0)")
    profile = load_profile(folder)
    assert profile.section("methods") == [{"name": "id", "type": "identity"}]
    assert profile.section("bootstrap") == {"resamples": 200, "seed": 0}
    with pytest.raises(PosefixError, match=r"profile.methods\[0\] lacks 'type'"):
        load_profile(write_profile(tmp_path / "q", ", methods=[dict(name='id')]"))
    with pytest.raises(KeyError):
        profile.section("no-such-section")


def test_a_results_file_source_in_the_gate_needs_training_split_results(tmp_path):
    folder = write_profile(tmp_path / "p", ", gate=dict(sources=['mine'])")
    with pytest.raises(PosefixError, match=r"source 'mine' is used on the training split \(gate.sources\) but a "
                                           r"results-file source has validation results only: .*train_path="):
        load_profile(folder)
    ok = write_profile(tmp_path / "q", ", gate=dict(sources=['mine'])",
                       sources=SOURCES.replace("path='r.json'", "path='r.json', train_path='t.json'"))
    assert load_profile(ok).section("gate")["sources"] == ["mine"]
    assert load_profile(write_profile(tmp_path / "r", ", gate=dict(sources=['syn'])")).sources[0]["name"] == "syn"


def test_a_results_file_source_as_a_measured_mix_needs_training_split_results(tmp_path):
    folder = write_profile(tmp_path / "p", ablation="data = dict(sandbox=None, mix='measured:mine')\n")
    with pytest.raises(PosefixError, match=r"source 'mine' is used on the training split \(the measured mix of "
                                           r"r18\) but a results-file source"):
        load_profile(folder)
    with pytest.raises(PosefixError, match=r"r18.py: data.mix 'measured:nope' names no source of the profile"):
        load_profile(write_profile(tmp_path / "q", ablation="data = dict(sandbox=None, mix='measured:nope')\n"))
    assert load_profile(write_profile(tmp_path / "r", ablation="data = dict(sandbox=None, mix='measured:syn')\n"))


def test_an_ablation_trains_on_the_profiles_data_or_says_where_else(tmp_path):
    # inherited data.sandbox in a profile over real images: refused, with both fixes named
    with pytest.raises(PosefixError, match=r"r18.py: trains on generated sandbox scenes .* set "
                                           r"data=dict\(sandbox=None\) .* or bench=dict\(trains_on='sandbox'\)"):
        load_profile(write_profile(tmp_path / "a", ablation=""))
    said = load_profile(write_profile(tmp_path / "b", ablation="bench = dict(trains_on='sandbox')\n"))
    assert said.ablations[0].trains_on == "sandbox"
    with pytest.raises(PosefixError, match=r"bench.trains_on='sandbox' but the config trains on the profile's data"):
        load_profile(write_profile(tmp_path / "c", ablation="data = dict(sandbox=None)\n"
                                                            "bench = dict(trains_on='sandbox')\n"))
    # a sandbox profile: its ablations train on the sandbox without a word
    assert load_profile(write_profile(tmp_path / "d", data="dict(kind='sandbox')", ablation=""))
    # the shipped coco-mini profile says which of its ablations trains elsewhere
    shipped = load_profile("coco-mini")
    assert {a.name: a.trains_on for a in shipped.ablations} == {
        "r18_64x48_paper_lb-off_skip_train-cocomini": None, "r18_64x48_paper_lb-off_skip_train-sandbox": "sandbox"}


def test_the_data_section_form_is_checked_at_load(tmp_path):
    with pytest.raises(PosefixError, match=r"data.kind 'cocomini' is not known \(known: sandbox, coco-mini, coco"):
        load_profile(write_profile(tmp_path / "a", data="dict(kind='cocomini')"))
    with pytest.raises(PosefixError, match=r"data type='coco' lacks 'val_img_dir'"):
        load_profile(write_profile(tmp_path / "b", data="dict(type='coco', ann_file='a.json', img_dir='i', "
                                                        "val_ann_file='v.json')"))
    with pytest.raises(PosefixError, match=r"data: 'train_split' belongs to the kind form"):
        load_profile(write_profile(tmp_path / "c", data="dict(type='coco', ann_file='a', img_dir='i', "
                                                        "val_ann_file='v', val_img_dir='w', train_split='x')"))
    with pytest.raises(PosefixError, match=r"unknown key 'val_img_folder' in profile.data \(did you mean "
                                           r"'val_img_dir'\?\)"):
        load_profile(write_profile(tmp_path / "d", data="dict(type='coco', val_img_folder='x')"))
