"""Tests for the μ-BERT model: shapes, presets, swapping, DMA/POI against full-matrix references, MAE, bf16, overfitting."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from mer_data import MerDataError
from mubert.attention import diag_attention
from mubert.config import PRESETS, MuBERTConfig, base, preset_config, tiny
from mubert.model import MuBERT
from mubert.swap import block_mask, random_resized_crop, token_mask
from mubert.transformer import Attention, patchify, resize_pos, sincos_2d, unpatchify


def small(**overrides) -> MuBERTConfig:
    """A very small config: 32 px, 4 px patches (8×8 grid, N=64), width 32, one block each side."""
    cfg = dict(image_size=32, patch_size=4, dim=32, heads=2, depth=1, decoder_dim=32, decoder_heads=2,
               decoder_depth=1, dino_out_dim=32, dino_hidden=32, dino_bottleneck=16, dino_local_size=16,
               dino_local_crops=2)
    cfg.update(overrides)
    return tiny(**cfg)


def pair(b: int, side: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    f0 = torch.rand(b, 3, side, side, generator=g)
    return f0, (f0 + 0.1 * torch.rand(b, 3, side, side, generator=g)).clamp(0, 1)


# ---- shapes and API ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("poi", ["mse", "dino", "off"])
@pytest.mark.parametrize("dma", ["diag", "full", "off"])
def test_forward_features_and_maps_shapes(poi, dma):
    torch.manual_seed(0)
    cfg = small(poi=poi, dma=dma, poi_gate=dma != "full")
    model = MuBERT(cfg)
    f0, f1 = pair(3, 32)
    out = model(f0, f1)
    assert set(out) == {"loss", "loss_r", "loss_agg"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in out.values())
    assert (out["loss_agg"] == 0) == (poi == "off")
    out["loss"].backward()
    assert model.features(f0, f1).shape == (3, cfg.num_patches, cfg.dim)
    tokens, row = model.forward_encoder(f0, ct_row=True)
    assert tokens.shape == (3, 1 + cfg.num_patches, cfg.dim) and row.shape == (3, cfg.num_patches)
    if dma != "off":
        maps = model.movement_maps(f0, f1)
        assert {k: tuple(v.shape) for k, v in maps.items()} == {k: (3, 64) for k in ("diag", "s", "w")}
        torch.testing.assert_close(maps["s"].sum(1), torch.ones(3))
        torch.testing.assert_close(maps["w"], maps["diag"] * maps["s"])
        assert bool(((maps["diag"] > 0) & (maps["diag"] <= 1)).all())
    else:
        with pytest.raises(MerDataError):
            model.movement_maps(f0, f1)


def test_patchify_roundtrip_and_layout():
    x = torch.rand(2, 3, 16, 24)
    p = patchify(x, 8)
    assert p.shape == (2, 6, 8 * 8 * 3)
    torch.testing.assert_close(p[1, 4].reshape(8, 8, 3), x[1, :, 8:16, 8:16].permute(1, 2, 0))  # row 1, col 1
    torch.testing.assert_close(unpatchify(p, 8, (2, 3)), x)


def test_presets_and_config_round_trip():
    assert base().image_size == 224 and base().num_patches == 784 and (base().dim, base().depth) == (512, 4)
    cfg = tiny(poi="dino", swap_mode="token")
    assert MuBERTConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    for bad in (dict(poi="cosine"), dict(swap_ratio=1.5), dict(image_size=100), dict(swap_aspect=(2.0, 3.0)),
                dict(dma=True), dict(dma="full"), dict(objective="mae"), dict(crop_size=50), dict(pos_layout="xy")):
        with pytest.raises(MerDataError):
            tiny(**bad)
    with pytest.raises(MerDataError, match="bogus"):
        MuBERTConfig.from_dict({"bogus": 1})
    with pytest.raises(MerDataError, match="mb3-tiny"):
        preset_config("mb4-tiny")


def test_table6_presets_name_the_objective_and_keep_the_size():
    """One preset per Table 6 row (and the released code), at either size; a bare size is the full μ-BERT."""
    assert preset_config("tiny") == preset_config("mb3-tiny") == tiny() and preset_config("base") == base()
    rows = {"mb1": ("off", "off", "mubert"), "mb2": ("diag", "off", "mubert"), "mb3": ("diag", "mse", "mubert"),
            "mae": ("off", "off", "mae"), "authors": ("diag", "dino", "mubert")}
    for size in ("tiny", "base"):
        for objective, (dma, poi, kind) in rows.items():
            cfg = preset_config(f"{objective}-{size}")
            assert (cfg.dma, cfg.poi, cfg.objective) == (dma, poi, kind)
            assert (cfg.image_size, cfg.dim) == ((112, 128) if size == "tiny" else (224, 512))
    assert set(PRESETS) == {"tiny", "base"} | {f"{o}-{s}" for o in rows for s in ("tiny", "base")}
    names = {name for name, _ in MuBERT(preset_config("mb1-tiny")).named_parameters()}
    assert not any(n.startswith(("dma_", "dino.")) for n in names)  # MB1: no DMA, no POI parameters
    names = {name for name, _ in MuBERT(preset_config("mb2-tiny")).named_parameters()}
    assert {"dma_q.weight", "dma_k.weight", "dma_v.weight"} <= names and "dma_proj.weight" not in names


def test_position_tables():
    """[row | col] halves (ours) or [col | row] (released code), each [sin | cos]; a smaller view gets a resampled table."""
    rc, cr = sincos_2d(16, (3, 5)), sincos_2d(16, (3, 5), "col_row")
    torch.testing.assert_close(cr, torch.cat([rc[:, 8:], rc[:, :8]], dim=1))
    k = 5 * 2 + 1  # row 2, column 1; the first frequency is 1
    torch.testing.assert_close(rc[k, [0, 4, 8, 12]], torch.tensor([2.0, 2.0, 1.0, 1.0]).sin().where(
        torch.tensor([True, False, True, False]), torch.tensor([2.0, 2.0, 1.0, 1.0]).cos()))
    pos = sincos_2d(16, (8, 8)).unsqueeze(0)
    small_pos = resize_pos(pos, (8, 8), (4, 4))
    assert small_pos.shape == (1, 16, 16) and bool(torch.isfinite(small_pos).all())
    torch.manual_seed(0)
    model = MuBERT(small(crop_size=16))  # Crop(I_{t+δ}) encoded at 16 px: 4×4 patches
    sides = []
    model.encoder.register_forward_pre_hook(lambda mod, args: sides.append(args[0].shape[-1]))
    assert torch.isfinite(model(*pair(2, 32))["loss"])
    assert sorted(sides) == [16, 32]  # one encoder call per resolution


# ---- swapping ---------------------------------------------------------------------------------------------------

def covered_by_rectangles(mask: np.ndarray, min_area: int) -> np.ndarray:
    """(B, h, w) → (B, h, w): cells inside some all-True axis-aligned rectangle of area ≥ min_area."""
    b, h, w = mask.shape
    csum = np.zeros((b, h + 1, w + 1), dtype=np.int64)
    csum[:, 1:, 1:] = mask.cumsum(1).cumsum(2)
    covered = np.zeros_like(mask)
    for r0 in range(h):
        for r1 in range(r0 + 1, h + 1):
            for c0 in range(w):
                for c1 in range(c0 + 1, w + 1):
                    area = (r1 - r0) * (c1 - c0)
                    if area < min_area:
                        continue
                    total = csum[:, r1, c1] - csum[:, r0, c1] - csum[:, r1, c0] + csum[:, r0, c0]
                    covered[total == area, r0:r1, c0:c1] = True
    return covered


def test_block_mask_reaches_ratio_in_rectangular_blocks():
    torch.manual_seed(1)
    mask = block_mask(12, (10, 10), 0.5, 16, (0.3, 1 / 0.3))
    assert mask.shape == (12, 10, 10) and mask.dtype == torch.bool
    assert bool((mask.flatten(1).float().mean(1) >= 0.5).all())
    m = mask.numpy()
    np.testing.assert_array_equal(covered_by_rectangles(m, 16), m)  # a union of blocks of ≥ 16 patches
    # A per-token mask of the same ratio is not such a union (the check above can fail).
    scattered = token_mask(12, (10, 10), 0.5).numpy()
    assert not np.array_equal(covered_by_rectangles(scattered, 16), scattered)


def test_single_round_gives_one_rectangle():
    torch.manual_seed(2)
    mask = block_mask(20, (8, 8), 0.2, 16, (0.3, 1 / 0.3)).numpy()  # 0.2·64 < 16: one block suffices
    for m in mask:
        rows, cols = np.nonzero(m)
        box = m[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.all() and box.size >= 16


def test_token_mask_exact_count_and_seeded_reproducibility():
    torch.manual_seed(3)
    a = token_mask(5, (8, 8), 0.3)
    assert (a.flatten(1).sum(1) == 20).all()  # ⌈0.3·64⌉
    torch.manual_seed(3)
    assert torch.equal(a, token_mask(5, (8, 8), 0.3))


@pytest.mark.parametrize("mode", ["block", "token"])
def test_swap_puts_only_f1_patches_at_same_positions(mode):
    torch.manual_seed(4)
    model = MuBERT(small(swap_mode=mode))
    f0, f1 = torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32)
    x_ts, mask = model.swap_blocks(f0, f1)
    p_ts, p0, p1 = (patchify(x, 4) for x in (x_ts, f0, f1))
    assert mask.shape == (4, 64) and bool((mask.float().mean(1) >= 0.5).all())
    assert torch.equal(p_ts[mask], p1[mask]) and torch.equal(p_ts[~mask], p0[~mask])


def test_swap_is_reproducible_under_a_seed():
    model = MuBERT(small())
    f0, f1 = pair(6, 32)
    torch.manual_seed(7)
    a = model.swap_blocks(f0, f1)[1]
    torch.manual_seed(7)
    b = model.swap_blocks(f0, f1)[1]
    c = model.swap_blocks(f0, f1)[1]
    assert torch.equal(a, b) and not torch.equal(b, c)


def test_random_resized_crop():
    x = torch.rand(3, 3, 16, 16)
    torch.testing.assert_close(random_resized_crop(x, (1.0, 1.0), (1.0, 1.0)), x)  # full box = identity
    ramp = torch.linspace(0, 1, 16).view(1, 1, 1, 16).expand(4, 3, 16, 16)
    torch.manual_seed(0)
    crop = random_resized_crop(ramp, (0.25, 0.25), (1.0, 1.0))  # half-width box: the ramp's slope doubles
    slope = (crop[..., -1] - crop[..., 0]).mean().item()
    assert crop.shape == ramp.shape and slope == pytest.approx(0.5, abs=0.05)


# ---- efficient attention against full-matrix references ---------------------------------------------------------

def test_diag_attention_matches_full_softmax_values_and_grads():
    """The chunked, checkpointed diagonal against the dense softmax, values and gradients."""
    torch.manual_seed(5)
    q = (torch.randn(2, 50, 16) * 3).requires_grad_()  # large logits exercise the log-sum-exp
    k = (torch.randn(2, 50, 16) * 3).requires_grad_()
    fast = diag_attention(q, k, chunk=7)
    ref = torch.softmax(q @ k.transpose(1, 2) / 4.0, dim=-1).diagonal(dim1=1, dim2=2)  # rows over keys
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-7)
    g = torch.randn_like(ref)
    grads_fast = torch.autograd.grad((fast * g).sum(), (q, k))
    grads_ref = torch.autograd.grad((ref * g).sum(), (q, k))
    for a, b in zip(grads_fast, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_attention_block_and_ct_row_match_naive():
    torch.manual_seed(6)
    attn = Attention(dim=24, heads=3)
    x = torch.randn(2, 1 + 20, 24)
    out, row = attn(x, ct_row=True)
    q, k, v = attn.qkv(x).reshape(2, 21, 3, 3, 8).permute(2, 0, 3, 1, 4)
    full = torch.softmax(q @ k.transpose(-2, -1) / 8 ** 0.5, dim=-1)  # (B, h, T, T)
    ref_out = attn.proj((full @ v).transpose(1, 2).reshape(2, 21, 24))
    torch.testing.assert_close(out, ref_out, rtol=1e-4, atol=1e-5)
    ct = full[:, :, 0, 1:]
    ref_row = (ct / ct.sum(-1, keepdim=True)).mean(1)  # A[0, patches], renormalized, heads averaged
    torch.testing.assert_close(row, ref_row)


@pytest.mark.parametrize("scaled", [True, False])
def test_dma_matches_a_dense_eq8_reference(scaled):
    """Â = softmax(Q(P_{t+δ}) K(P_{t/s})ᵀ/√D) with Σ_i Â(i, j) = 1 over the queries i (Eq. 8), as an N×N matrix."""
    torch.manual_seed(8)
    model = MuBERT(small(dma_gate_scale=scaled, dma_chunk=10))
    p_ref, p_ts = torch.randn(2, 64, 32) * 3, torch.randn(2, 64, 32) * 3
    s = torch.softmax(torch.randn(2, 64), dim=-1)
    q, k, v = model.dma_q(p_ref), model.dma_k(p_ts), model.dma_v(p_ts)
    a_hat = torch.softmax(q @ k.transpose(1, 2) / 32 ** 0.5, dim=1)  # (B, i, j): each column sums to 1 over i
    torch.testing.assert_close(a_hat.sum(1), torch.ones(2, 64))
    diag = a_hat.diagonal(dim1=1, dim2=2)
    n = 64 if scaled else 1
    torch.testing.assert_close(model.dma_diag(p_ref, p_ts), diag, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(model.dma(p_ref, p_ts), (diag * n).unsqueeze(-1) * v, rtol=1e-5, atol=1e-6)  # Eq. 9
    ref = ((diag * n) * (s * n)).unsqueeze(-1) * v  # Eq. 12
    torch.testing.assert_close(model.dma(p_ref, p_ts, s), ref, rtol=1e-5, atol=1e-6)
    rows = torch.softmax(q @ k.transpose(1, 2) / 32 ** 0.5, dim=2).diagonal(dim1=1, dim2=2)  # normalised over I_{t/s}
    assert (rows - diag).abs().max() > 0.05 * diag.max()  # the axis matters: the other one is a different gate


def test_full_dma_and_projection_match_a_dense_reference():
    """dma="full" (the released code's diag_att=False): Âᵀ V, then the output projection."""
    torch.manual_seed(8)
    model = MuBERT(small(dma="full", dma_proj=True, poi="off"))
    p_ref, p_ts = torch.randn(2, 64, 32) * 3, torch.randn(2, 64, 32) * 3
    q, k, v = model.dma_q(p_ref), model.dma_k(p_ts), model.dma_v(p_ts)
    a_hat = torch.softmax(q @ k.transpose(1, 2) / 32 ** 0.5, dim=1)
    ref = model.dma_proj(a_hat.transpose(1, 2) @ v)  # out_j = Σ_i Â(i, j) v_i
    torch.testing.assert_close(model.dma(p_ref, p_ts), ref, rtol=1e-5, atol=1e-5)


class ShapeRecorder(TorchDispatchMode):
    """Records the shape of every tensor produced by an aten op (forward and backward)."""

    def __init__(self):
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.shapes.append(tuple(t.shape))
        return out


def has_square(shapes, n: int) -> bool:
    return any(sum(d in (n, n + 1) for d in shape) >= 2 for shape in shapes)


def test_no_n_by_n_attention_matrix_in_a_training_step():
    torch.manual_seed(9)
    cfg = small(image_size=64, dma_chunk=64)  # N = 256 tokens, DMA chunks of 64 keys
    model = MuBERT(cfg)
    f0, f1 = pair(2, 64)
    with ShapeRecorder() as rec:
        model(f0, f1)["loss"].backward()
    assert len(rec.shapes) > 50 and not has_square(rec.shapes, 256)
    with ShapeRecorder() as control:  # the recorder does see a materialized matrix
        q = torch.randn(2, 256, 8)
        torch.softmax(q @ q.transpose(1, 2), -1)
    assert has_square(control.shapes, 256)


# ---- precision, EMA, learning -----------------------------------------------------------------------------------

@pytest.mark.parametrize("poi", ["mse", "dino"])
def test_bf16_autocast_is_finite(poi):
    torch.manual_seed(10)
    model = MuBERT(small(poi=poi))
    f0, f1 = pair(2, 32)
    with torch.autocast("cpu", torch.bfloat16):
        out = model(f0, f1)
        maps = model.movement_maps(f0, f1)
    out["loss"].backward()
    assert all(torch.isfinite(v) for v in out.values())
    assert all(v.dtype == torch.float32 and bool(torch.isfinite(v).all()) for v in maps.values())
    assert all(bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None)


def test_mae_baseline_encodes_the_visible_patches_and_scores_the_hidden_ones():
    """Table 6's MAE: random masking of I_t (mask_ratio), the encoder sees only the kept patches, L_r on the hidden ones."""
    torch.manual_seed(11)
    model = MuBERT(preset_config("mae-tiny", image_size=32, patch_size=4, dim=32, heads=2, depth=1, decoder_dim=32,
                                 decoder_heads=2, decoder_depth=1))
    f0, f1 = pair(2, 32)
    lengths = []
    model.encoder.blocks[0].register_forward_pre_hook(lambda mod, args: lengths.append(args[0].shape[1]))
    torch.manual_seed(5)
    out = model(f0, f1)
    assert lengths == [1 + 16]  # CT + 25 % of the 64 patches
    torch.manual_seed(5)
    keep, restore, mask = model.random_masking(2, f0.device)
    assert mask.sum(1).tolist() == [48.0, 48.0] and not bool(mask.gather(1, keep).any())
    with torch.no_grad():
        pred = model.forward_decoder(model.encoder(f0, keep=keep)[0], restore)
    per_patch = ((pred - patchify(f0, 4)) ** 2).mean(-1)
    torch.testing.assert_close(out["loss_r"], per_patch[mask.bool()].mean())
    assert out["loss_agg"] == 0
    out["loss"].backward()
    assert model.decoder.mask_token.grad is not None and model.decoder.mask_token.grad.abs().sum() > 0


def test_features_without_dma_are_token_differences():
    torch.manual_seed(12)
    model = MuBERT(small(dma="off"))
    f0, f1 = pair(2, 32)
    tokens = model.forward_encoder(torch.cat([f0, f1]))[0]
    torch.testing.assert_close(model.features(f0, f1), tokens[2:, 1:] - tokens[:2, 1:])


def astronaut_pairs(n: int, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n (I_t, I_{t+δ}) pairs: crops of the astronaut photo, the second shifted by one pixel (a small movement)."""
    from skimage import data

    img = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float().div(255).unsqueeze(0)  # (1, 3, 512, 512)
    img = F.interpolate(img, size=(128, 128), mode="area")[0]
    f0 = torch.stack([img[:, 20 * i:20 * i + side, 30:30 + side] for i in range(n)])
    f1 = torch.stack([img[:, 20 * i + 1:20 * i + 1 + side, 31:31 + side] for i in range(n)])
    return f0, f1


def test_loss_falls_when_overfitting_a_few_pairs():
    torch.manual_seed(13)
    model = MuBERT(small(dim=64, depth=2, decoder_dim=64, decoder_depth=2))
    f0, f1 = astronaut_pairs(4, 32)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(60):
        out = model(f0, f1)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        model.ema_update()
        losses.append(out["loss_r"].item())
    mean_image_mse = ((f0 - f0.mean(0, keepdim=True)) ** 2).mean().item()  # best input-agnostic prediction
    assert np.mean(losses[-5:]) < 0.3 * losses[0]
    assert np.mean(losses[-5:]) < mean_image_mse


def test_bench_variants_run_and_dma_poi_flops_stay_within_15_percent():
    import importlib.util
    from pathlib import Path

    from torch.utils.flop_counter import FlopCounterMode

    path = Path(__file__).resolve().parents[1] / "bench" / "bench_mubert.py"
    spec = importlib.util.spec_from_file_location("bench_mubert", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    torch.manual_seed(14)
    f0, f1 = pair(1, 112)
    flops = {}
    for variant in bench.VARIANTS:  # the tiny size (N=196, d=128), as the benchmark builds it
        model = MuBERT(bench.variant_config(variant, "tiny", 48))
        with FlopCounterMode(display=False) as counter:
            loss = bench.step_loss(variant, model, f0, f1)
            loss.backward()
        assert torch.isfinite(loss)
        flops[variant] = counter.get_total_flops()
    assert flops["plain"] < flops["matched"] <= flops["mubert"] <= 1.15 * flops["matched"]
    assert flops["mb2"] < flops["lowcrop"] < flops["mubert"]  # the crop view costs less at 48 px than at 112 px
