"""The authors' released checkpoint (github uark-cviu/Micron-BERT) → a mer-train checkpoint: `mer-eval import-checkpoint`.

Their file (`CASME2-is224-p8-b16-ep200.pth`) is a dict {"args": argparse.Namespace, "epoch": int, "model": state dict}
saved from DistributedDataParallel, so every key starts with "module.". It is read with `torch.load(weights_only=True)`,
with argparse.Namespace the one class let through torch's safe-globals list: nothing else is ever unpickled.

Their key (after "module.")                      ours
    backbone.patch_embed.proj (conv, D×C×ps×ps)  encoder.patch_embed (linear on patchify's (row, column, channel) order)
    backbone.cls_token                           encoder.ct
    backbone.blocks.i.mlp.fc1 / fc2              encoder.blocks.i.mlp.0 / mlp.2 (the other block keys keep their names)
    backbone.norm                                encoder.norm
    att.to_k (on I_{t+δ}), att.to_q (on the      dma_q, dma_k: Eq. 8's Q(P_{t+δ}) and K(P_{t/s}). Their logits are
    swapped frame), att.to_v, att.proj           q(I_{t/s})·k(I_{t+δ}) with the softmax over I_{t+δ}: the same Â
                                                 column-normalised as Eq. 8 once the two names swap. dma_v, dma_proj.
    decoder_embed / _blocks.i / _norm / _pred    decoder.embed / blocks.i / norm / pred
    backbone.pos_embed, decoder_pos_embed        not stored: checked to be the fixed [col | row] sin-cos tables
    student.*, teacher.*, dino_loss_fn.*, fc.*   dropped with a note (DINO head and teacher; the unused aux classifier)
The config is the `authors` objective (mubert/config.py) with the sizes read from the tensors' shapes, the head counts
from args.model_name, dma="diag" if args.diag_att else "full" (the released checkpoint: full) and poi="off".
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch

from mer_data import MerDataError
from mubert import checkpoint
from mubert.config import MuBERTConfig, preset_config
from mubert.model import MuBERT
from mubert.transformer import sincos_2d

# What the weights cannot tell: head counts and LayerNorm eps of each model the released code names.
MODELS = {"mae_vit_small_patch8": dict(heads=4, decoder_heads=4, ln_eps=1e-6)}
W = r"(weight|bias)"


def _blocks(theirs: str, ours: str) -> list[tuple[str, str]]:
    """Renames of a stack of their ViT blocks: the MLP's fc1/fc2 are our mlp.0/mlp.2, the rest keeps its names."""
    return [(rf"{theirs}\.(\d+\.(?:norm1|norm2|attn\.qkv|attn\.proj)\.(?:weight|bias))", rf"{ours}.\1"),
            (rf"{theirs}\.(\d+)\.mlp\.fc1\.{W}", rf"{ours}.\1.mlp.0.\2"),
            (rf"{theirs}\.(\d+)\.mlp\.fc2\.{W}", rf"{ours}.\1.mlp.2.\2")]


RENAMES = [  # (their key, fully matched; our key)
    (rf"backbone\.patch_embed\.proj\.{W}", r"encoder.patch_embed.\1"),
    (r"backbone\.cls_token", "encoder.ct"),
    *_blocks(r"backbone\.blocks", "encoder.blocks"),
    (rf"backbone\.norm\.{W}", r"encoder.norm.\1"),
    (rf"att\.to_k\.{W}", r"dma_q.\1"),
    (rf"att\.to_q\.{W}", r"dma_k.\1"),
    (rf"att\.to_v\.{W}", r"dma_v.\1"),
    (rf"att\.proj\.{W}", r"dma_proj.\1"),
    *_blocks(r"decoder_blocks", "decoder.blocks"),
    (rf"decoder_(embed|norm|pred)\.{W}", r"decoder.\1.\2"),
]
POSITIONS = ("backbone.pos_embed", "decoder_pos_embed")  # fixed tables, checked instead of stored
DROPPED = re.compile(r"(student|teacher|dino_loss_fn|fc)\.")  # DINO parts and the aux classifier


def read_released(path: Path) -> tuple[dict[str, torch.Tensor], argparse.Namespace, int | None]:
    """(state dict without "module.", args, epoch) of an authors' checkpoint, loaded without arbitrary unpickling."""
    path = Path(path)
    if not path.is_file():
        raise MerDataError(f"{path}: no such file")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exn:  # a foreign file fails anywhere in the unpickler: UnpicklingError, KeyError, EOFError, …
        raise MerDataError(f"{path}: not a checkpoint readable with weights_only ({checkpoint.load_error(exn)})") from None
    if not (isinstance(raw, dict) and isinstance(raw.get("args"), argparse.Namespace)
            and isinstance(raw.get("model"), dict)):
        raise MerDataError(f'{path}: not an authors\' μ-BERT checkpoint (expected a dict with "args" (a Namespace), '
                           '"epoch" and "model")')
    state = {k.removeprefix("module."): v for k, v in raw["model"].items()}
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MerDataError(f'{path}: "model" holds something other than tensors')
    return state, raw["args"], raw.get("epoch")


def rename(key: str) -> str | None:
    """Our name for one of their keys; None for a key the mapping does not know."""
    for pattern, ours in RENAMES:
        match = re.fullmatch(pattern, key)
        if match:
            return match.expand(ours)
    return None


def _config(state: dict[str, torch.Tensor], args: argparse.Namespace, path: Path) -> MuBERTConfig:
    """The `authors` config whose shapes are those of `state`."""
    name = getattr(args, "model_name", None)
    if name not in MODELS:
        raise MerDataError(f"{path}: args.model_name {name!r} is not one the released code defines ({', '.join(MODELS)})")

    def get(key: str) -> torch.Tensor:
        if key not in state:
            raise MerDataError(f"{path}: key module.{key} missing")
        return state[key]

    conv, dim = get("backbone.patch_embed.proj.weight"), get("backbone.cls_token").shape[-1]
    side = round((get("backbone.pos_embed").shape[1] - 1) ** 0.5)
    depth = sum(1 for k in state if re.fullmatch(r"backbone\.blocks\.\d+\.norm1\.weight", k))
    ratio = get("backbone.blocks.0.mlp.fc1.weight").shape[0] / dim
    has_decoder = getattr(args, "has_decoder", True)
    decoder = dict(decoder_dim=get("decoder_embed.weight").shape[0],
                   decoder_depth=sum(1 for k in state if re.fullmatch(r"decoder_blocks\.\d+\.norm1\.weight", k))) \
        if has_decoder else {}
    image_size = side * conv.shape[-1]
    if getattr(args, "img_size", image_size) != image_size:
        raise MerDataError(f"{path}: args.img_size {args.img_size} but the position table is for {image_size} px")
    return preset_config("authors-base", image_size=image_size, patch_size=conv.shape[-1], in_chans=conv.shape[1],
                         dim=dim, depth=depth, mlp_ratio=ratio, **MODELS[name], **decoder,
                         dma="diag" if getattr(args, "diag_att", False) else "full", poi="off",
                         norm_pix_loss=bool(getattr(args, "norm_pix_loss", False)))


def convert(state: dict[str, torch.Tensor], args: argparse.Namespace,
            path: Path) -> tuple[dict[str, torch.Tensor], MuBERTConfig, list[str]]:
    """Their state dict and args → (our state dict, our config, notes on what was dropped or filled in)."""
    cfg = _config(state, args, path)
    notes, ours = [], {}
    for key, table in ((k, state[k]) for k in POSITIONS if k in state):
        grid = cfg.grid
        dim = cfg.dim if key.startswith("backbone") else cfg.decoder_dim
        expected = torch.cat([torch.zeros(1, dim), sincos_2d(dim, grid, "col_row")]).unsqueeze(0)
        if table.shape != expected.shape or not torch.allclose(table.float(), expected, atol=1e-5):
            raise MerDataError(f"{path}: module.{key} is not the fixed [col | row] sin-cos table the released code builds")
    dropped = sorted(k for k in state if DROPPED.match(k))
    unknown = sorted(k for k in state if k not in POSITIONS and not DROPPED.match(k) and rename(k) is None)
    if unknown:
        raise MerDataError(f"{path}: keys the released code's model does not have: {unknown[:5]}")
    for key, tensor in state.items():
        if key in POSITIONS or DROPPED.match(key):
            continue
        if key == "backbone.patch_embed.proj.weight":  # (D, C, ps, ps) → (D, ps·ps·C), patchify's value order
            tensor = tensor.permute(0, 2, 3, 1).reshape(tensor.shape[0], -1)
        ours[rename(key)] = tensor.float()
    if dropped:
        notes.append(f"dropped {len(dropped)} tensors of the DINO head/teacher and aux classifier "
                     f"({', '.join(sorted({k.split('.')[0] for k in dropped}))}): poi=off; the encoder, DMA and decoder "
                     "are complete")
    torch.manual_seed(0)
    model = MuBERT(cfg)
    if not getattr(args, "has_decoder", True):
        ours.update({k: v for k, v in model.state_dict().items() if k.startswith("decoder.")})
        notes.append("the checkpoint has no decoder (has_decoder=False): a freshly initialised one (seed 0) stands in; "
                     "fine-tuning and maps use the encoder and DMA only")
    try:
        model.load_state_dict(ours)
    except RuntimeError as exn:
        raise MerDataError(f"{path}: {' '.join(str(exn).split())[:300]}") from None
    return model.state_dict(), cfg, notes


def import_checkpoint(src: Path, dst: Path) -> dict:
    """Convert the authors' checkpoint `src` and write it as a mer-train checkpoint `dst`; returns a summary."""
    state, args, epoch = read_released(src)
    weights, cfg, notes = convert(state, args, Path(src))
    imported = {"source": str(src), "epoch": epoch, "args": json.loads(json.dumps(vars(args), default=repr)),
                "notes": notes}
    checkpoint.save(Path(dst), {"format": checkpoint.FORMAT, "step": 0, "data": {"epoch": 0, "batch": 0},
                                "model": weights, "config": {"model": cfg.to_dict(), "imported": imported}})
    return {"path": str(dst), "tensors": len(state), "epoch": epoch, "config": cfg, "notes": notes}
