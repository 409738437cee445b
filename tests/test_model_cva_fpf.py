"""CVA/FPF (mer_data.models.cva_fpf): shapes and sizes at the paper's and the tiny preset, the Swin encoder's count
against Swin's layer recipe, each released-code switch, and a few optimiser steps."""

import math
from dataclasses import replace
from functools import lru_cache

import pytest
import torch

from mer_data import MerDataError
from mer_data.aus import AU_COLUMNS
from mer_data.models import get
from mer_data.models.cva_fpf import CVAConfig, OrientedPool, authors, paper, tiny
from model_checks import loss_drops


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@lru_cache(maxsize=None)
def build(cfg, n_classes=5):
    """One model per (config, classes), in eval mode; cached: paper-size models take seconds to build."""
    torch.manual_seed(0)
    return get("cva-fpf").build(cfg, n_classes).eval()


def batch_of(cfg, b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.rand(b, 2, 3, cfg.size, cfg.size, generator=g), "label": torch.arange(b) % 2,
            "aus": (torch.rand(b, len(AU_COLUMNS), generator=g) > 0.7).float()}


def test_registry_entry_declares_the_pair_view():
    entry = get("cva-fpf")
    assert entry.view == "pair"
    assert entry.view_options(paper()) == {"color": True, "size": 224, "jitter": 0.0375}
    assert set(entry.presets) == {"paper", "authors", "tiny"}


def test_tiny_and_paper_forward_shapes():
    for cfg in (tiny(), paper()):
        with torch.no_grad():
            assert build(cfg)(batch_of(cfg, b=1)).shape == (1, 5)
    motion = build(paper()).motion(*batch_of(paper(), b=1)["x"].unbind(1))
    assert motion.shape == (1, 512, 14, 14)


def swin_params(embed, depths, heads, window, patch=4) -> int:
    """Swin (Liu et al.) as FaceSleuth's swin_transformer.py builds it, without the unused head: patch conv + LN;
    per block 2 LN, qkv, proj, (2M−1)² × heads bias table, MLP 4×; patch merging LN(4C) + Linear(4C, 2C); final LN."""
    total, dim = 3 * patch * patch * embed + embed + 2 * embed, embed
    for i, (depth, h) in enumerate(zip(depths, heads)):
        block = 4 * dim + (3 * dim * dim + 3 * dim) + (dim * dim + dim) + (2 * window - 1) ** 2 * h \
            + (dim * 4 * dim + 4 * dim) + (4 * dim * dim + dim)
        total += depth * block
        if i < len(depths) - 1:
            total += 8 * dim + 4 * dim * 2 * dim
            dim *= 2
    return total + 2 * dim


def test_parameter_counts():
    model = build(paper())
    assert n_params(model.fpf) == swin_params(128, (2, 2, 6), (4, 8, 16), 7)
    assert model.fc1.in_features == 512 * 14 * 14 and model.fc1.out_features == 512  # the code's fc1
    soa = build(authors())
    assert soa.head[0].num_features == 512 + len(AU_COLUMNS)  # the AU slot (the code: 512 + 21 CASME II AUs)
    # SOA's learned directions (2 numbers a block) and its gate replace CVA's; the paper states +0.16 %
    extra = n_params(soa) - n_params(model)
    assert 0 < extra / n_params(model) < 0.002
    assert n_params(build(tiny())) < 100_000


def test_soa_at_ninety_degrees_pools_as_cva():
    x = torch.randn(2, 3, 8, 8)
    fixed, learned = OrientedPool(False, 0.0), OrientedPool(True, 90.0)
    torch.testing.assert_close(learned(x), fixed(x), atol=1e-5, rtol=0)
    torch.testing.assert_close(fixed(x), x.mean(dim=3, keepdim=True))
    assert float(learned.angle().detach()) == pytest.approx(math.pi / 2)
    tilted = OrientedPool(True, 72.0)
    with torch.no_grad():
        assert float((tilted(x) - fixed(x)).abs().max()) > 1e-3


def test_soa_angle_learns():
    model = get("cva-fpf").build(replace(tiny(), attention="soa"), 2).train()
    model.loss(batch_of(tiny(), b=4))[0].backward()
    grads = [m.vec.grad for m in model.modules() if isinstance(m, OrientedPool)]
    assert len(grads) == 4 and all(g is not None and float(g.abs().sum()) > 0 for g in grads)


def test_au_input_annotation_reads_the_aus_none_ignores_them():
    for au_input in ("none", "annotation"):
        cfg = replace(tiny(), au_input=au_input)
        model = build(cfg)
        batch = batch_of(cfg)
        other = dict(batch, aus=1.0 - batch["aus"])
        with torch.no_grad():
            differs = not torch.allclose(model(batch), model(other))
        assert differs == (au_input == "annotation")


def test_bad_config_is_one_line_error():
    with pytest.raises(MerDataError, match="attention"):
        CVAConfig(attention="horizontal")
    with pytest.raises(MerDataError, match="au_input"):
        CVAConfig(au_input="predicted")
    with pytest.raises(MerDataError, match="must match"):
        CVAConfig(swin_depths=(2, 2), swin_heads=(4, 8))


def test_a_few_steps_lower_the_loss():
    cfg = tiny()
    torch.manual_seed(0)
    model = get("cva-fpf").build(cfg, 2).train()
    batch = batch_of(cfg, b=6, seed=3)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    first, last = loss_drops(model, batch, opt)
    assert last < 0.9 * first
