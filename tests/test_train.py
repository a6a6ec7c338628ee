"""The training loop's paths on CPU: the eager fp32 step, bf16 autocast, the CUDA-graph
fallback (capture really fails without a GPU) and on-device augmentation."""

import logging

import pytest
import torch

from nas.arch import ArchSpec
from nas.data import load
from nas.model import build
from nas.augment import augment
from nas.trainer import TooSlow, TrainConfig, train

SPEC = "c16k3-dw32k3s2-dw32k3s2-gap"


@pytest.fixture(scope="module")
def data():
    return load("synthetic")


def _train(data, **cfg):
    torch.manual_seed(0)
    model = build(ArchSpec.from_string(SPEC, *data.info.input_shape, data.info.num_classes))
    return train(model, data, TrainConfig(epochs=3, lr=2e-2, seed=0, **{"batch_size": 64, **cfg}))


def test_eager_fp32_learns_and_reports_its_path(data):
    result = _train(data)
    assert result.val_acc > 0.9 and len(result.history) == 3
    assert (result.batch_size, result.bf16, result.cuda_graph) == (64, False, False)
    assert _train(data, batch_size=None).batch_size == 128  # the CPU default
    assert result.graph_fallback is None


def test_failed_capture_falls_back_to_the_same_eager_training_and_says_so_once(data, caplog):
    eager = _train(data)
    with caplog.at_level(logging.WARNING, logger="nas"):
        forced = [_train(data, cuda_graph=True) for _ in range(2)]
    for result in forced:  # this machine has no GPU: capture fails for real
        assert not result.cuda_graph and result.graph_fallback
        assert result.history == eager.history  # the fallback is the eager step, exactly
    notes = [r.message for r in caplog.records if "CUDA graph capture failed" in r.message]
    assert len(notes) == 1 and forced[0].graph_fallback in notes[0]


def test_min_speed_stops_a_run_at_its_first_report_with_the_speed_it_measured(data):
    result = _train(data, min_speed=1)  # any machine trains faster than 1 image/s
    throughput = len(data.train_x) * 3 / result.seconds  # evaluation included: a lower bound
    with pytest.raises(TooSlow, match=r"too slow: [\d,]+ images/s < 1,000,000,000,000") as caught:
        _train(data, min_speed=1e12, reports_per_epoch=2)
    measured = float(caught.value.args[0].split()[2].replace(",", ""))
    assert 0.5 * throughput < measured < 10 * throughput  # images per second, not per step


def test_bf16_autocast_stays_as_accurate_as_fp32(data):
    fp32, bf16 = _train(data, precision="fp32"), _train(data, precision="bf16")
    assert bf16.bf16 and not fp32.bf16
    assert bf16.val_acc > 0.9 and abs(bf16.val_acc - fp32.val_acc) <= 0.03


def test_augment_flips_and_translates_each_image_without_changing_its_shape():
    torch.manual_seed(0)
    x = torch.randn(16, 2, 8, 8).contiguous(memory_format=torch.channels_last)
    assert augment(x, "none") is x
    out = augment(x, "flip-crop")
    assert out.shape == x.shape and out.is_contiguous(memory_format=torch.channels_last)
    pad, changed = 1, 0  # 8 // 8
    for original, moved in zip(x, out):
        padded = [torch.nn.functional.pad(v, (pad,) * 4) for v in (original, original.flip(2))]
        matches = [(p[:, dy:dy + 8, dx:dx + 8] == moved).all() for p in padded
                   for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)]
        assert any(matches)  # each output is a flipped/shifted copy of its own input
        changed += not torch.equal(original, moved)
    assert changed > 8  # and most were moved: the draw is per image


def test_affine_augment_warps_each_image_a_little_and_differently():
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 13:15, 13:15] = 1.0  # a dot at the centre
    out = augment(x.contiguous(memory_format=torch.channels_last), "affine")
    assert out.shape == x.shape and out.is_contiguous(memory_format=torch.channels_last)
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    mass = out[:, 0].sum((1, 2))
    cy, cx = (out[:, 0] * ys).sum((1, 2)) / mass, (out[:, 0] * xs).sum((1, 2)) / mass
    # Rotation and scale keep the centre; the shift moves it by at most 10% of 14 px, times
    # the scale (up to 1.1): 1.54 px.
    assert ((cy - 13.5).abs() <= 1.6).all() and ((cx - 13.5).abs() <= 1.6).all()
    assert ((mass - 4).abs() <= 4 * 0.25).all()  # scale 0.9-1.1: the dot's area barely changes
    assert len({(round(a, 3), round(b, 3)) for a, b in zip(cy.tolist(), cx.tolist())}) > 32


def test_flip_affine_mirrors_about_half_the_images_and_warps_each_a_little():
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 13:15, 5:7] = 1.0  # a dot left of the centre: a flip moves it to the right
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")

    def centres(kind):
        out = augment(x.contiguous(memory_format=torch.channels_last), kind)[:, 0]
        mass = out.sum((1, 2))
        return (out * ys).sum((1, 2)) / mass, (out * xs).sum((1, 2)) / mass

    _, left = centres("affine")
    assert (left < 13.5).all()  # no flip: every dot stays left
    cy, cx = centres("flip-affine")
    mirrored = cx > 13.5
    assert 16 <= mirrored.sum() <= 48  # a fair coin per image
    # Each dot sits near 6 (or 21 mirrored), moved by the warp: rotation about the centre
    # (up to 10 degrees of 7.5 px off it), scale and shift, a few pixels at most.
    assert ((torch.where(mirrored, 27 - cx, cx) - 6).abs() <= 3.5).all()
    assert ((cy - 13.5).abs() <= 3.5).all()
    assert len({round(v, 3) for v in cx.tolist()}) > 32  # every image warped its own way


def test_mixup_blends_every_batch_reproducibly_and_still_learns(data):
    def weights(**cfg):
        torch.manual_seed(0)
        model = build(ArchSpec.from_string(SPEC, *data.info.input_shape, data.info.num_classes))
        result = train(model, data, TrainConfig(epochs=2, lr=2e-2, batch_size=64, **cfg))
        return result, torch.cat([p.detach().flatten() for p in model.parameters()])

    (mixed, w_mixed), (_, w_again), (_, w_plain) = weights(mixup=0.4), weights(mixup=0.4), weights()
    assert torch.equal(w_mixed, w_again)  # the shares and shuffles follow the seed
    assert not torch.allclose(w_mixed, w_plain, atol=1e-3)  # and they change what is learnt
    assert mixed.val_acc > 0.5


def test_training_with_augmentation_still_learns(data):
    # Flips and shifts blur these fixed random patterns, yet it must learn far above 0.25.
    assert _train(data, augment="flip-crop").val_acc > 0.5
    assert _train(data, augment="affine").val_acc > 0.5


def test_a_briefly_trained_net_is_scored_with_re_estimated_batch_norm_statistics(mnist_dir):
    """One epoch on 5,000 MNIST images: batch norm's running averages still trail the
    weights, so eval-mode accuracy with them is far below what the weights can do. The
    score train() reports is the re-estimated one (benchmarks/bn_reestimation.py)."""
    from nas.evaluate import validate

    data = load("mnist", mnist_dir, limit_train=5000)
    spec = ArchSpec.from_string("c11k3s2-ir16k3e4se-ir19k3s2e6se-dw25k3-dw31k3s2-ir31k3s2e4se-"
                                "ir33k3e4-ir34k3e2se-gap_d0.004-hardswish",
                                *data.info.input_shape, data.info.num_classes)
    scores = {}
    for bn_images in (0, 2000):
        torch.manual_seed(3)
        model = build(spec)
        scores[bn_images] = train(model, data, TrainConfig(epochs=1, seed=3, bn_images=bn_images)).val_acc
    stale, reported = scores[0], scores[2000]
    re_estimated = validate(model, data)  # the same weights, statistics estimated again
    assert stale < 0.5 < 0.65 < reported, scores  # the fault is real for this net
    assert abs(reported - re_estimated) < 0.02, (reported, re_estimated)
