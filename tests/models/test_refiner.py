"""The refiner network on real coco-mini crops: head variants, the identity prior, flip test, precision, loss."""

import numpy as np
import pytest
import torch

from posefix_bench.codecs.heatmap import grid_to_input
from posefix_bench.errors import PosefixError
from posefix_bench.models import (
    build_refiner,
    flip_test,
    fold_batchnorm,
    is_folded,
    load_refiner,
    refiner_loss,
    save_refiner,
)
from posefix_bench.structures.schema import COCO17
from posefix_bench.structures.transforms import flip_keypoints

SMALL = dict(backbone="resnet18", input_size=(48, 64))


def _noisy(pose, valid, seed, px=3.0):
    g = torch.Generator().manual_seed(seed)
    return pose + torch.randn(pose.shape, generator=g) * px, valid


@pytest.mark.parametrize("head", ["posefix", "prior", "skip", "prior+skip"])
def test_head_variant_builds_trains_saves_and_loads(head, crops_64x48, tmp_path):
    images, pose, valid = (t[:4] for t in crops_64x48)
    model = build_refiner({**SMALL, "head": head}, seed=0)
    names = dict(model.named_parameters())
    assert ("head.prior_weight" in names) == ("prior" in head)
    assert ("head.skip.weight" in names) == ("skip" in head)
    x = model.preprocess(images)
    inp, inp_valid = _noisy(pose, valid, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    model.train()
    for _ in range(4):
        out = model(x, inp, inp_valid)
        loss = model.loss(out, pose, valid)
        opt.zero_grad()
        loss["loss"].backward()
        opt.step()
        losses.append(loss["loss"].item())
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    path = save_refiner(tmp_path / "r.pth", model, {"trained": True, "iterations": 4, "seed": 0})
    loaded, meta = load_refiner(path, expect={"head": head})
    assert meta["trained"] is True and meta["iterations"] == 4 and loaded.config == model.config
    model.eval()
    with torch.inference_mode():
        a, b = model(x, inp, inp_valid), loaded(x, inp, inp_valid)
    torch.testing.assert_close(a["coords"], b["coords"], rtol=0, atol=0)


@pytest.mark.parametrize("head", ["prior", "prior+skip"])
@pytest.mark.parametrize("crops", ["crops_64x48", "crops_256x192"])
def test_prior_at_initialisation_reproduces_the_input_pose(head, crops, request):
    """The identity the prior is named for: an untrained prior model returns its input within grid rounding."""
    images, pose, valid = request.getfixturevalue(crops)
    h, w = images.shape[1:3]
    model = build_refiner(dict(backbone="resnet18", head=head, input_size=(w, h)), seed=0).eval()
    inp, inp_valid = _noisy(pose, valid, seed=2)
    with torch.inference_mode():
        out = model(model.preprocess(images), inp, inp_valid)
    err = (out["coords"] - inp).abs()[inp_valid]
    assert err.max() <= 0.5 * model.stride, f"max {err.max():.2f} px at stride {model.stride}"


def test_linear_prior_of_the_note_is_biased_at_initialisation(crops_256x192):
    """Why the log prior is the default: w * heatmap (w = 10) leaves mass on the flat background."""
    images, pose, valid = crops_256x192
    errors = {}
    for form in ("log", "linear"):
        model = build_refiner(dict(backbone="resnet18", head="prior", input_size=(192, 256), prior_form=form)).eval()
        with torch.inference_mode():
            out = model(model.preprocess(images), pose, valid)
        errors[form] = float((out["coords"] - pose).norm(dim=-1)[valid].mean())
    assert errors["linear"] > 2.0 and errors["linear"] > 5 * errors["log"], errors


def test_flip_test_is_symmetric(crops_64x48):
    images, pose, valid = crops_64x48
    model = build_refiner({**SMALL, "head": "skip"}, seed=0).eval()
    x = model.preprocess(images)
    fi = COCO17.flip_index
    mirrored_pose = torch.as_tensor(flip_keypoints(pose.numpy(), 48, fi), dtype=torch.float32)
    with torch.inference_mode():
        a = flip_test(model, x, pose, valid)
        b = flip_test(model, x.flip(-1), mirrored_pose, valid[:, fi])
        plain = model(x, pose, valid)
    back = torch.as_tensor(flip_keypoints(b["coords"].numpy(), 48, fi), dtype=torch.float32)
    torch.testing.assert_close(a["coords"], back, atol=1e-4, rtol=0)
    torch.testing.assert_close(a["confidence"], b["confidence"][:, fi], atol=1e-5, rtol=0)
    assert (a["coords"] - plain["coords"]).abs().max() > 0.01  # the mirrored pass did contribute


def test_preprocess_accepts_both_layouts_and_checks_input(crops_64x48):
    images, _, _ = crops_64x48
    model = build_refiner(SMALL)
    nhwc = model.preprocess(images)
    nchw = model.preprocess(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    torch.testing.assert_close(nhwc, nchw)
    assert nhwc.is_contiguous(memory_format=torch.channels_last) and nhwc.dtype == torch.float32
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    torch.testing.assert_close(nhwc * torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) + mean,
                               torch.as_tensor(images).permute(0, 3, 1, 2) / 255.0)
    with pytest.raises(PosefixError, match="expected uint8"):
        model.preprocess(images.astype(np.float32))
    with pytest.raises(PosefixError, match=r"expected \(B, 3, 64, 48\)"):
        model.preprocess(images[:, :32])
    with pytest.raises(PosefixError, match=r"pose must be \(8, 17, 2\)"):
        model(nhwc, torch.zeros(8, 14, 2), torch.ones(8, 14, dtype=torch.bool))


def test_bf16_autocast_and_channels_last(crops_64x48):
    images, pose, valid = crops_64x48
    model = build_refiner({**SMALL, "head": "prior+skip"}).eval()
    x = model.preprocess(images)
    with torch.inference_mode():
        ref = model(x, pose, valid)
        model = model.to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x.contiguous(memory_format=torch.channels_last), pose, valid)
    assert out["coords"].dtype == torch.float32 and torch.isfinite(out["logits"]).all()
    assert (out["coords"] - ref["coords"]).abs()[valid].max() < 0.5 * model.stride


def test_loss_is_masked_and_matches_its_definition():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 16, 12, generator=g)
    grid = torch.tensor([[[2.0, 3.0], [5.5, 7.25], [1.0, 1.0]], [[11.0, 15.0], [20.0, 3.0], [0.0, 0.0]]])
    outputs = {"logits": logits, "grid_coords": torch.zeros(2, 3, 2), "stride": 4}
    target = grid_to_input(grid, 4)
    valid = torch.tensor([[True, True, False], [True, True, True]])
    loss = refiner_loss(outputs, target, valid)
    moved = target.clone()
    moved[0, 2] = torch.tensor([float("nan"), 1e6])  # an invalid target may hold anything
    assert refiner_loss(outputs, moved, valid)["loss"] == loss["loss"]
    # cross-entropy over the valid targets inside the grid ([1, 1] of batch 1 lies beyond the last column)
    logp = torch.log_softmax(logits.flatten(-2), -1).view(2, 3, 16, 12)
    ce = [-logp[0, 0, 3, 2], -(0.5 * 0.75 * logp[0, 1, 7, 5] + 0.5 * 0.75 * logp[0, 1, 7, 6]
                               + 0.5 * 0.25 * logp[0, 1, 8, 5] + 0.5 * 0.25 * logp[0, 1, 8, 6]),
          -logp[1, 0, 15, 11], -logp[1, 2, 0, 0]]
    torch.testing.assert_close(loss["loss_heatmap"], torch.stack(ce).mean())
    l1 = (grid.abs().sum(-1) * valid).sum() / (2 * valid.sum())  # predictions are all at 0
    torch.testing.assert_close(loss["loss_coord"], l1)
    torch.testing.assert_close(loss["loss"], loss["loss_heatmap"] + loss["loss_coord"])


def test_batchnorm_folding_keeps_the_outputs(crops_64x48, tmp_path):
    images, pose, valid = crops_64x48
    model = build_refiner({**SMALL, "head": "prior+skip"}, seed=0)
    x = model.preprocess(images)
    with torch.no_grad():
        model.train()(x, pose, valid)  # non-trivial running statistics
    model.eval()
    folded = fold_batchnorm(model)
    assert is_folded(folded) and not is_folded(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    with torch.inference_mode():
        a, b = model(x, pose, valid), folded(x, pose, valid)
    torch.testing.assert_close(b["logits"], a["logits"], atol=1e-4, rtol=1e-4)
    with pytest.raises(PosefixError, match="cannot save a BatchNorm-folded refiner"):
        save_refiner(tmp_path / "f.pth", folded)
