"""The bench's step cache: keys from payloads, completion markers, locks."""

import multiprocessing as mp
import time

from posefix_bench.bench.cache import StepCache, code_fingerprint
from posefix_bench.hashing import canonical_hash


def test_a_step_is_named_by_its_payload(tmp_path):
    cache = StepCache(tmp_path)
    a = cache.step("train", {"lr": 1e-3, "seed": 0})
    assert a.path == tmp_path / "train" / a.key and (a.path / "payload.json").is_file()
    assert cache.step("train", {"seed": 0, "lr": 1e-3}).key == a.key  # key order does not matter
    assert cache.step("train", {"lr": 1e-3, "seed": 1}).key != a.key
    assert cache.step("refine", {"lr": 1e-3, "seed": 0}).key != a.key  # the kind is part of the name
    assert canonical_hash((1, 2.0)) == canonical_hash([1, 2.0])


def test_a_step_is_done_only_once_marked_and_keeps_its_summary(tmp_path):
    step = StepCache(tmp_path).step("predict", {"x": 1})
    assert not step.done and step.summary() == {}
    (step.path / "results.json").write_text("half")
    assert not step.done  # output without the marker is not a finished step
    step.mark_done({"poses": 3})
    again = StepCache(tmp_path).step("predict", {"x": 1})
    assert again.done and again.summary() == {"poses": 3}


def _hold(path, seconds, out):
    from posefix_bench.bench.cache import StepCache

    with StepCache(path).step("train", {"x": 1}).lock():
        out.put(time.monotonic())
        time.sleep(seconds)
        out.put(time.monotonic())


def test_the_lock_makes_a_second_worker_wait(tmp_path):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    first = ctx.Process(target=_hold, args=(tmp_path, 1.0, q))
    first.start()
    start, _ = q.get(timeout=60), None
    second = ctx.Process(target=_hold, args=(tmp_path, 0.0, q))
    second.start()
    released = q.get(timeout=60)
    acquired = q.get(timeout=60)
    first.join(), second.join()
    assert start <= released <= acquired  # the second holder entered only after the first let go


def test_the_code_fingerprint_follows_the_sources():
    assert code_fingerprint(["bench"]) == code_fingerprint(["bench"])
    assert code_fingerprint(["bench"]) != code_fingerprint(["record"])
