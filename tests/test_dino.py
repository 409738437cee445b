"""poi="dino" against the released code's published DINO behaviour: head, loss over crop pairs, centre, schedules, EMA."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mubert.config import preset_config
from mubert.dino import DinoHead, momentum, multi_crop, teacher_temp
from mubert.model import MuBERT


def authors_small(**overrides):
    return preset_config("authors-tiny", image_size=32, patch_size=4, dim=32, heads=2, depth=1, decoder_dim=32,
                         decoder_heads=2, decoder_depth=1, dino_out_dim=16, dino_hidden=24, dino_bottleneck=8,
                         dino_local_crops=3, dino_local_size=16, **overrides)


def test_head_is_three_layers_and_weight_normed_prototypes_with_unit_gain():
    torch.manual_seed(0)
    head = DinoHead(12, 20, 6, 9)
    assert [type(m).__name__ for m in head.mlp] == ["Linear", "GELU", "Linear", "GELU", "Linear"]
    ref_last = torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(6, 9, bias=False))
    ref_last.parametrizations.weight.original1.data.copy_(head.last.weight)  # v
    ref_last.parametrizations.weight.original0.data.fill_(1.0)  # g, frozen at 1 (norm_last_layer=True)
    x = torch.randn(5, 12)
    ref = ref_last(F.normalize(head.mlp(x), dim=-1, p=2))
    torch.testing.assert_close(head(x), ref)


def test_loss_averages_every_pair_of_different_crops():
    """2 teacher (global) crops × (2 + L) student crops, the same-crop pairs skipped, centred and sharpened teacher."""
    torch.manual_seed(1)
    model = MuBERT(authors_small())
    dino, b = model.dino, 2
    dino.center.normal_()
    globals_, locals_ = multi_crop(torch.rand(b, 3, 32, 32), model.cfg)
    assert globals_.shape == (2 * b, 3, 32, 32) and locals_.shape == (3 * b, 3, 16, 16)
    ct_g, ct_l = torch.randn(2 * b, 32), torch.randn(3 * b, 32)
    loss = dino.loss(ct_g, ct_l, globals_, progress=0.0)
    with torch.no_grad():
        t = dino.teacher_head(dino.teacher(globals_)[0][:, 0])
        p_t = F.softmax((t - dino.center) / 0.04, dim=-1).reshape(2, b, -1)  # (teacher crop, sample, K)
        logp = F.log_softmax(dino.head(torch.cat([ct_g, ct_l])) / 0.1, dim=-1).reshape(5, b, -1)
        ce = -(p_t[:, None] * logp[None]).sum(-1).mean(-1)  # (2, 5): every (teacher crop, student crop)
        keep = torch.ones(2, 5, dtype=torch.bool)
        keep[0, 0] = keep[1, 1] = False
    torch.testing.assert_close(loss, ce[keep].mean())
    total, rows = dino._batch
    assert rows == 2 * b
    center = dino.center.clone()
    dino.ema_update(model.encoder, 0.0)
    torch.testing.assert_close(dino.center, 0.9 * center + 0.1 * total / rows)


def test_schedules_follow_the_released_cosine_and_the_teacher_temperature_warmup():
    cfg = authors_small(ema_momentum=0.996, dino_warmup_teacher_temp=0.02, dino_teacher_temp=0.06, dino_warmup_frac=0.5)
    total = 100  # their cosine_scheduler(0.996, 1, epochs, iters): 1 + ½(0.996 − 1)(1 + cos(π·it/total))
    for it in (0, 25, 50, 99):
        assert momentum(cfg, it / total) == pytest.approx(1 + 0.5 * (0.996 - 1) * (1 + math.cos(math.pi * it / total)))
    assert teacher_temp(cfg, 0.0) == pytest.approx(0.02) and teacher_temp(cfg, 0.25) == pytest.approx(0.04)
    assert teacher_temp(cfg, 0.5) == teacher_temp(cfg, 0.9) == pytest.approx(0.06)


def test_a_training_step_moves_the_teacher_by_ema_only():
    torch.manual_seed(2)
    model = MuBERT(authors_small(ema_momentum=0.9))
    f0 = torch.rand(2, 3, 32, 32)
    sides = []
    model.encoder.register_forward_pre_hook(lambda mod, args: sides.append(args[0].shape[-1]))
    out = model(f0, (f0 + 0.1 * torch.rand_like(f0)).clamp(0, 1))
    assert sorted(sides) == [16, 32] and out["loss_agg"] > 0  # swapped, I_{t+δ} and globals at 32 px; locals at 16
    out["loss"].backward()
    assert all(p.grad is None for p in model.dino.teacher.parameters())
    assert model.dino.head.mlp[0].weight.grad.abs().sum() > 0
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5).step()
    teacher, student = model.dino.teacher.blocks[0].mlp[0].weight, model.encoder.blocks[0].mlp[0].weight
    before = teacher.clone()
    model.set_progress(30, 60)  # half-way: momentum (1 + 0.9) / 2
    model.ema_update()
    torch.testing.assert_close(teacher, 0.95 * before + 0.05 * student)
