"""FDP (mer_data.models.fdp): shapes and sizes at the paper's and the tiny preset, each released-code switch, the
dynamic-image target against the code's weights, and a few optimiser steps."""

from functools import lru_cache

import numpy as np
import pytest
import torch

from mer_data import MerDataError
from mer_data.models import get
from mer_data.models.fdp import FDPConfig, authors, dynamic_target, paper, tiny
from mer_data.models.fdp_backbone import GlobalBlock, MultiHeadConv, divisible
from mer_data.views.dynamic import rank_pool_weights
from model_checks import loss_drops


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@lru_cache(maxsize=None)
def build(cfg, n_classes=5):
    """A fresh model per (config, classes); cached: paper-size models take seconds to build."""
    torch.manual_seed(0)
    return get("fdp").build(cfg, n_classes)


def test_registry_entry_declares_the_sequence_view():
    entry = get("fdp")
    assert entry.view == "sequence"
    assert entry.view_options(paper()) == {"frames": 8, "color": False, "size": 64}
    assert set(entry.presets) == {"paper", "authors", "tiny"}


def test_tiny_forward_and_loss_shapes():
    cfg = tiny()
    model = get("fdp").build(cfg, 3)
    x = torch.rand(4, cfg.frames, 1, cfg.size, cfg.size)
    logits, image = model.outputs(x)
    assert logits.shape == (4, 3) and image.shape == (4, cfg.size, cfg.size)
    assert model({"x": x}).shape == (4, 3)
    loss, parts = model.loss({"x": x, "label": torch.tensor([0, 1, 2, 0])})
    assert loss.ndim == 0 and set(parts) == {"ce", "dynamic_mse"}
    assert n_params(model) < 250_000


def test_paper_forward_shape():
    cfg = paper()
    model = build(cfg).eval()
    with torch.no_grad():
        logits, image = model.outputs(torch.rand(1, 8, 1, 64, 64))
    assert logits.shape == (1, 5) and image.shape == (1, 64, 64)


def segnet_params_as_coded(cin: int, cout: int) -> int:
    """SegNet(8, 1) of the released fdp.py, layer by layer: 3×3 convs with bias, BN after all but the last."""
    enc = [(cin, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
           (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    dec = [(512, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 256), (256, 256), (256, 256),
           (256, 128), (128, 128), (128, 64), (64, 64)]
    convs = sum(a * b * 9 + b + 2 * b for a, b in enc + dec)
    return convs + 64 * cout * 9 + cout


def encoder_params_as_coded() -> int:
    """The released code's frame encoder: stem, LFA blocks only (dense 3×3 conv), BN, Linear(768, 4096)."""
    stem = [(1, 64), (64, 32), (32, 64), (64, 64)]
    total = sum(a * b * 9 + 2 * b for a, b in stem)
    cin = 64
    for depth, width, stride in zip((3, 4, 10, 3), (96, 192, 384, 768), (1, 2, 2, 2)):
        for j in range(depth):
            if cin != width or (stride == 2 and j == 0):
                total += cin * width + 2 * width  # pointwise conv + BN of the patch embedding
            hidden = divisible(width * 3, 32)
            total += width * width * 9 + 2 * width + width * hidden + hidden + hidden * width + width
            cin = width
    return total + 2 * 768 + 768 * 4096 + 4096


def test_parameter_counts_against_the_released_code():
    cfg = authors()
    model = build(cfg)
    assert n_params(model.construct) == segnet_params_as_coded(8, 1)
    assert n_params(model.encoder) == encoder_params_as_coded()
    # the code's CLS_Net: Conv3d(1, 8, (3, 3, 8)), Linear(3528, 256), Linear(256, 5)
    assert model.head[1].in_features == 3528
    assert n_params(model.scorer) + n_params(model.head) == (8 * 72 + 8) + (3528 * 256 + 256) + (256 * 5 + 5)
    total = n_params(model)
    assert total == n_params(model.encoder) + n_params(model.construct) + n_params(model.scorer) + n_params(model.head)
    assert n_params(build(paper())) != total  # the global blocks and multi-head convs change the count


def test_reshape_mixes_features_permute_keeps_frames():
    for layout in ("permute", "reshape"):
        cfg = FDPConfig(size=tiny().size, encoder=tiny().encoder, segnet=tiny().segnet, frame_layout=layout)
        model = build(cfg)
        t, d = cfg.frames, cfg.size ** 2
        feats = torch.arange(t, dtype=torch.float32).view(1, t, 1).expand(1, t, d)  # frame k's features all = k
        volume = model.frame_volume(feats)[0, 0]  # (S, S, T)
        on_time_axis = torch.stack([volume[..., k] for k in range(t)])
        frames_along_time = torch.arange(t, dtype=torch.float32).view(t, 1, 1).expand_as(on_time_axis)
        if layout == "permute":
            assert torch.equal(on_time_axis, frames_along_time)
        else:  # the time axis of one location holds T feature values of a single frame
            assert not torch.equal(on_time_axis, frames_along_time)
            assert bool((volume == volume[..., :1]).all())


def test_global_blocks_switch():
    def globals_of(cfg):
        return sum(isinstance(m, GlobalBlock) for m in build(cfg).encoder.modules())
    assert globals_of(paper()) == 4 and globals_of(authors()) == 0
    assert build(authors()).encoder.head.in_features == 768 and build(paper()).encoder.head.in_features == 1024


def test_dense_local_conv_mixes_heads_multi_head_does_not():
    x = torch.randn(1, 16, 6, 6)
    bumped = x.clone()
    bumped[:, :4] += 1.0  # only the first head's channels
    for dense in (False, True):
        torch.manual_seed(0)
        conv = MultiHeadConv(16, 4, dense).eval()
        first = conv.body if dense else conv.body[0]
        changed = (first(bumped) - first(x)).abs().amax(dim=(0, 2, 3)) > 0
        assert bool(changed[4:].any()) == dense


def test_rank_pool_weights_match_the_codes_sum():
    for t in (3, 8):
        coded = [sum((2 * i - t - 1) / i for i in range(n + 1, t + 1)) for n in range(t)]  # data.py's fw[n]
        np.testing.assert_allclose(rank_pool_weights(t), coded, rtol=1e-12, atol=1e-12)


def test_dynamic_target_still_is_zero_and_ramp_is_scaled():
    still = torch.full((2, 8, 1, 4, 4), 0.3)
    assert torch.equal(dynamic_target(still), torch.zeros(2, 4, 4))
    ramp = torch.linspace(0, 1, 8).view(1, 8, 1, 1, 1) * torch.linspace(0, 1, 16).view(1, 1, 1, 4, 4)
    target = dynamic_target(ramp)[0]
    assert float(target.min()) == 0.0 and float(target.max()) == pytest.approx(1.0)
    assert bool((target.flatten().diff() >= 0).all())  # brighter where the motion is larger


def test_bad_config_is_one_line_error():
    with pytest.raises(MerDataError, match="frame_layout"):
        FDPConfig(frame_layout="transpose")
    with pytest.raises(MerDataError, match="out_dim"):
        FDPConfig(size=32)


def test_a_few_steps_lower_the_loss():
    cfg = tiny()
    model = get("fdp").build(cfg, 2).train()
    torch.manual_seed(1)
    batch = {"x": torch.rand(4, cfg.frames, 1, cfg.size, cfg.size), "label": torch.tensor([0, 1, 0, 1])}
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    first, last = loss_drops(model, batch, opt)
    assert last < 0.9 * first
