"""The authors' released model (uark-cviu/Micron-BERT, models/mae.py) re-derived from its published behaviour, against
ours after `mer-eval import-checkpoint`: same encoder tokens, DMA output, decoder prediction and L_r under the same weights.

The reference below is written from what their code does (a functional re-statement, not their classes):
ViT-S/8 backbone (conv patch embedding, class token, fixed [col | row] sin-cos table with a zero row for the class token,
pre-norm blocks, LayerNorm eps 1e-6), a single-head cross-attention whose query and value come from the swapped frame
and key from I_{t+δ}, softmax over the keys, ×1/√D, then either the diagonal gate (diag_att) or the full product, and an
output projection; the decoder gets the patch tokens only; ImageNet-normalised pixels in and as the target.
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

import cli
from mer_data import MerDataError
from mubert import checkpoint
from mubert.authors import import_checkpoint
from mubert.config import MuBERTConfig, preset_config
from mubert.model import MuBERT
from mubert.swap import apply_swap, token_mask

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
HEADS, EPS = 4, 1e-6  # mae_vit_small_patch8


# ---- a checkpoint in their layout --------------------------------------------------------------------------------

def their_pos_table(dim: int, side: int) -> torch.Tensor:
    """(1, 1+N, dim): a zero row (class token), then per patch [sin|cos](column·ω) ‖ [sin|cos](row·ω), ω_k = 10⁻⁴ᵏ/⁽ᵈⁱᵐ/⁴⁾."""
    cols, rows = np.meshgrid(np.arange(side, dtype=np.float64), np.arange(side, dtype=np.float64))  # "xy": cols[i, j] = j
    omega = 1.0 / 10000 ** (np.arange(dim // 4) / (dim / 4))

    def half(pos: np.ndarray) -> np.ndarray:
        angles = pos.reshape(-1, 1) * omega
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)

    table = np.concatenate([np.zeros((1, dim)), np.concatenate([half(cols), half(rows)], axis=1)])
    return torch.from_numpy(table).float().unsqueeze(0)


def _blocks(prefix: str, depth: int, dim: int, hidden: int, rand) -> dict:
    out = {}
    for i in range(depth):
        p = f"{prefix}.{i}."
        out |= {p + "norm1.weight": 1 + rand(dim), p + "norm1.bias": rand(dim),
                p + "attn.qkv.weight": rand(3 * dim, dim), p + "attn.qkv.bias": rand(3 * dim),
                p + "attn.proj.weight": rand(dim, dim), p + "attn.proj.bias": rand(dim),
                p + "norm2.weight": 1 + rand(dim), p + "norm2.bias": rand(dim),
                p + "mlp.fc1.weight": rand(hidden, dim), p + "mlp.fc1.bias": rand(hidden),
                p + "mlp.fc2.weight": rand(dim, hidden), p + "mlp.fc2.bias": rand(dim)}
    return out


def released_state(dim=32, depth=2, dec_dim=24, dec_depth=1, side=8, ps=4, dino=False, zeros=False) -> dict:
    """A state dict with the released model's keys and shapes ("module." prefixed), random (or zero) weights."""
    g = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.zeros(shape) if zeros else 0.15 * torch.randn(*shape, generator=g)

    state = {"backbone.patch_embed.proj.weight": rand(dim, 3, ps, ps), "backbone.patch_embed.proj.bias": rand(dim),
             "backbone.cls_token": rand(1, 1, dim), "backbone.pos_embed": their_pos_table(dim, side),
             **_blocks("backbone.blocks", depth, dim, 4 * dim, rand),
             "backbone.norm.weight": 1 + rand(dim), "backbone.norm.bias": rand(dim)}
    for name in ("to_q", "to_k", "to_v", "proj"):
        state |= {f"att.{name}.weight": rand(dim, dim), f"att.{name}.bias": rand(dim)}
    state |= {"decoder_embed.weight": rand(dec_dim, dim), "decoder_embed.bias": rand(dec_dim),
              "decoder_pos_embed": their_pos_table(dec_dim, side),
              **_blocks("decoder_blocks", dec_depth, dec_dim, 4 * dec_dim, rand),
              "decoder_norm.weight": 1 + rand(dec_dim), "decoder_norm.bias": rand(dec_dim),
              "decoder_pred.weight": rand(ps * ps * 3, dec_dim), "decoder_pred.bias": rand(ps * ps * 3)}
    if dino:  # DINO wraps the shared backbone (its keys appear again), plus a teacher, heads and the loss centre
        state |= {f"student.{k}": v for k, v in state.items() if k.startswith("backbone.")}
        state |= {f"teacher.{k}": v.clone() for k, v in state.items() if k.startswith("backbone.")}
        for who in ("student", "teacher"):
            state |= {f"{who}.head.mlp.0.weight": rand(64, dim), f"{who}.head.last_layer.weight_g": torch.ones(16, 1),
                      f"{who}.head.last_layer.weight_v": rand(16, 64)}
        state["dino_loss_fn.center"] = rand(1, 16)
    return {f"module.{k}": v for k, v in state.items()}


def write_released(path: pathlib.Path, diag: bool = False, dino: bool = False, **shape) -> pathlib.Path:
    """Their file: {"args": Namespace, "epoch", "model"}."""
    side, ps = shape.get("side", 8), shape.get("ps", 4)
    args = argparse.Namespace(model_name="mae_vit_small_patch8", img_size=side * ps, has_decoder=True, aux_cls=False,
                              att_loss=False, diag_att=diag, enable_dino=dino, out_dim=16, local_crops_number=8,
                              warmup_teacher_temp=0.04, teacher_temp=0.04, warmup_teacher_temp_epochs=0, epochs=200)
    torch.save({"args": args, "epoch": 199, "model": released_state(dino=dino, **shape)}, path)
    return path


# ---- their forward, re-stated --------------------------------------------------------------------------------------

def ln(sd, prefix, x):
    return F.layer_norm(x, x.shape[-1:], sd[prefix + ".weight"], sd[prefix + ".bias"], EPS)


def lin(sd, prefix, x):
    return F.linear(x, sd[prefix + ".weight"], sd[prefix + ".bias"])


def block(sd, p, x):
    b, t, d = x.shape
    q, k, v = lin(sd, p + "attn.qkv", ln(sd, p + "norm1", x)).reshape(b, t, 3, HEADS, d // HEADS).permute(2, 0, 3, 1, 4)
    attn = ((q @ k.transpose(-2, -1)) * (d // HEADS) ** -0.5).softmax(-1)
    x = x + lin(sd, p + "attn.proj", (attn @ v).transpose(1, 2).reshape(b, t, d))
    return x + lin(sd, p + "mlp.fc2", F.gelu(lin(sd, p + "mlp.fc1", ln(sd, p + "norm2", x))))


def backbone(sd, imgs):
    """Normalised images (B, 3, H, W) → tokens (B, 1+N, D), class token first."""
    w = sd["backbone.patch_embed.proj.weight"]
    x = F.conv2d(imgs, w, sd["backbone.patch_embed.proj.bias"], stride=w.shape[-1]).flatten(2).transpose(1, 2)
    x = torch.cat([sd["backbone.cls_token"].expand(x.shape[0], -1, -1), x], dim=1) + sd["backbone.pos_embed"]
    for i in range(sum(k.endswith("norm1.weight") and k.startswith("backbone.") for k in sd)):
        x = block(sd, f"backbone.blocks.{i}.", x)
    return ln(sd, "backbone.norm", x)


def cross_attention(sd, x, x_ref, diag: bool):
    """Their att([x, x_ref, x]): query and value from x (the swapped frame), key from x_ref; softmax over the keys."""
    q, k, v = lin(sd, "att.to_q", x), lin(sd, "att.to_k", x_ref), lin(sd, "att.to_v", x)
    attn = ((q @ k.transpose(-2, -1)) * x.shape[-1] ** -0.5).softmax(-1)  # (B, N, N), rows sum to 1 over I_{t+δ}
    out = attn.diagonal(dim1=-2, dim2=-1).unsqueeze(-1) * v if diag else attn @ v
    return lin(sd, "att.proj", out), attn


def decoder(sd, latent):
    x = lin(sd, "decoder_embed", latent) + sd["decoder_pos_embed"][:, 1:]
    for i in range(sum(k.startswith("decoder_blocks.") and k.endswith("norm1.weight") for k in sd)):
        x = block(sd, f"decoder_blocks.{i}.", x)
    return lin(sd, "decoder_pred", ln(sd, "decoder_norm", x))


def patches(imgs, ps):
    b, c, h, w = imgs.shape
    x = torch.einsum("nchpwq->nhwpqc", imgs.reshape(b, c, h // ps, ps, w // ps, ps))
    return x.reshape(b, (h // ps) * (w // ps), ps * ps * c)


def frames(b=2, side=32):
    g = torch.Generator().manual_seed(1)
    f0 = torch.rand(b, 3, side, side, generator=g)
    return f0, (f0 + 0.2 * torch.rand(b, 3, side, side, generator=g)).clamp(0, 1)


def imported(tmp_path, diag: bool, dino: bool = False) -> tuple[MuBERT, dict, dict]:
    src = write_released(tmp_path / "theirs.pth", diag=diag, dino=dino)
    summary = import_checkpoint(src, tmp_path / "ours.pt")
    weights, config = checkpoint.load_weights(tmp_path / "ours.pt")
    model = MuBERT(MuBERTConfig.from_dict(config["model"]))
    model.load_state_dict(weights)
    theirs = {k.removeprefix("module."): v for k, v in torch.load(src, weights_only=False)["model"].items()}
    return model.eval(), theirs, summary


# ---- agreement -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("diag", [True, False])
def test_imported_model_computes_what_the_released_model_computes(tmp_path, diag):
    model, sd, summary = imported(tmp_path, diag)
    assert summary["config"].dma == ("diag" if diag else "full") and summary["epoch"] == 199
    f0, f1 = frames()
    torch.manual_seed(3)
    x_ts = apply_swap(f0, f1, token_mask(2, (8, 8), 0.5))  # their per-token swapping, done outside their model
    with torch.no_grad():
        ref_ts, ref_1 = backbone(sd, (x_ts - MEAN) / STD), backbone(sd, (f1 - MEAN) / STD)
        ours_ts, ours_1 = model.forward_encoder(x_ts)[0], model.forward_encoder(f1)[0]
        torch.testing.assert_close(ours_ts, ref_ts, atol=1e-5, rtol=1e-5)  # encoder tokens, class token included
        torch.testing.assert_close(ours_1, ref_1, atol=1e-5, rtol=1e-5)
        ref_lat, attn = cross_attention(sd, ref_ts[:, 1:], ref_1[:, 1:], diag)
        ours_lat = model.dma(ours_1[:, 1:], ours_ts[:, 1:])
        torch.testing.assert_close(ours_lat, ref_lat, atol=1e-5, rtol=1e-5)  # DMA output (after their projection)
        ref_pred = decoder(sd, ref_lat)
        torch.testing.assert_close(model.forward_decoder(ours_lat), ref_pred, atol=1e-5, rtol=1e-5)
        ref_loss = ((ref_pred - patches((f0 - MEAN) / STD, 4)) ** 2).mean()  # their reconstruction_loss
        torch.manual_seed(3)  # the full forward draws the same token mask first
        out = model(f0, f1)
        torch.testing.assert_close(out["loss_r"], ref_loss, atol=1e-5, rtol=1e-5)
        assert out["loss_agg"] == 0  # DINO parts are not imported
        # fine-tuning: the onset takes the swapped frame's place; maps: the diagonal of their attention (get_attmap)
        ref_on = backbone(sd, (f0 - MEAN) / STD)
        ref_feat, attn = cross_attention(sd, ref_on[:, 1:], ref_1[:, 1:], diag)
        torch.testing.assert_close(model.features(f0, f1), ref_feat, atol=1e-5, rtol=1e-5)
        maps = model.movement_maps(f0, f1)
        torch.testing.assert_close(maps["diag"], attn.diagonal(dim1=-2, dim2=-1), atol=1e-6, rtol=1e-5)


def test_imported_config_is_the_authors_preset_at_the_files_sizes(tmp_path):
    """So the agreement above is that of the `authors` objective itself (DINO aside: see test_dino.py)."""
    model, _, _ = imported(tmp_path, diag=True)
    assert model.cfg == preset_config("authors-base", image_size=32, patch_size=4, dim=32, depth=2, decoder_dim=24,
                                      decoder_depth=1, poi="off")


def test_dino_parts_are_dropped_with_a_note(tmp_path):
    model, _, summary = imported(tmp_path, diag=False, dino=True)
    assert model.cfg.poi == "off" and not hasattr(model, "dino")
    assert any("dropped" in n and "student" in n and "teacher" in n for n in summary["notes"])
    saved = checkpoint.load(tmp_path / "ours.pt")["config"]["imported"]
    assert saved["args"]["enable_dino"] is True and saved["notes"] == summary["notes"]


def test_the_released_files_layout_converts_key_for_key(tmp_path):
    """The released file's 117 tensors (mae_vit_small_patch8 at 224 px, diag_att off, no DINO) → authors-base, dma=full."""
    src = tmp_path / "CASME2-is224-p8-b16-ep200.pth"
    write_released(src, dim=512, depth=4, dec_dim=512, dec_depth=4, side=28, ps=8, zeros=True)
    assert len(torch.load(src, weights_only=False)["model"]) == 117
    summary = import_checkpoint(src, tmp_path / "ours.pt")
    assert summary["config"] == preset_config("authors-base", dma="full", poi="off") and not summary["notes"]


# ---- bad input -----------------------------------------------------------------------------------------------------

def test_files_that_are_not_their_checkpoint_fail_in_one_line(tmp_path):
    text, short = tmp_path / "notes.pth", tmp_path / "hello.pth"
    text.write_text("not a checkpoint")
    short.write_text("hello\n")  # the weights-only unpickler fails on it with a KeyError
    plain = tmp_path / "plain.pth"
    torch.save({"model": {"w": torch.zeros(2)}}, plain)
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"args": argparse.Namespace(model_name="mae_vit_small_patch8", out=pathlib.PurePosixPath("/x")),
                "epoch": 1, "model": {}}, unsafe)
    other = write_released(tmp_path / "other.pth")
    raw = torch.load(other, weights_only=False)
    raw["args"].model_name = "mae_vit_huge_patch14"
    torch.save(raw, other)
    moved = write_released(tmp_path / "moved.pth")
    raw = torch.load(moved, weights_only=False)
    raw["model"]["module.backbone.pos_embed"] = raw["model"]["module.backbone.pos_embed"].flip(1)
    torch.save(raw, moved)
    cases = [(text, "weights_only"), (short, "weights_only"), (plain, "not an authors"), (unsafe, "weights_only"),
             (other, "mae_vit_huge_patch14"), (moved, "sin-cos table"), (tmp_path / "none.pth", "no such file")]
    for path, message in cases:
        with pytest.raises(MerDataError, match=message):
            import_checkpoint(path, tmp_path / "out.pt")
        result = CliRunner().invoke(cli.eval_app, ["import-checkpoint", str(path), "--out", str(tmp_path / "o.pt")])
        assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out.pt").exists() and not (tmp_path / "o.pt").exists()


def test_their_file_given_as_init_points_to_the_import(tmp_path):
    with pytest.raises(MerDataError, match="mer-eval import-checkpoint"):
        checkpoint.load_weights(write_released(tmp_path / "theirs.pth"))


def test_cli_import_prints_the_config_and_notes(tmp_path):
    src = write_released(tmp_path / "theirs.pth", dino=True)
    result = CliRunner().invoke(cli.eval_app, ["import-checkpoint", str(src), "--out", str(tmp_path / "ours.pt")])
    assert result.exit_code == 0, result.output
    assert "dma=full" in result.output and "dropped" in result.output and (tmp_path / "ours.pt").is_file()
