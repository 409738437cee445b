"""μ-BERT (Micron-BERT, Nguyen et al., CVPR 2023): μ-Encoder/Decoder, Blockwise Swapping, DMA and POI in one module.

Equations (numbered as in the paper):
- Eq. 1-2   N_p = HW/ps² non-overlapping patches, linear projection α plus fixed 2-D sin-cos position e(i); a
            contextual token CT (position 0, learned) is prepended to the sequence.
- Eq. 3-4   μ-Encoder: L_e pre-norm blocks x' = x + MHA(LN(x)), x = x' + MLP(LN(x')); P = E(Z), (B, 1+N, D).
- Eq. 5-6   μ-Decoder: the same blocks, then a linear layer to ps·ps·C values per patch, reshaped to the image.
- Alg. 1    Blockwise Swapping (mubert/swap.py): I_{t/s} is I_t with ≥ r_s of its patches replaced, in
            rectangular blocks, by the patches of I_{t+δ} at the same positions.
- Eq. 8-9   DMA: Â = softmax_j(Q(P_{t+δ})_i · K(P_{t/s})_j / √D), P_dma = diag(Â) ⊙ V(P_{t/s}).
            The QUERY frame is I_{t+δ} (at fine-tuning: the apex); KEYS and VALUES come from the swapped frame
            I_{t/s} (at fine-tuning: the onset, unswapped). The softmax runs over the keys (each row of Â sums to 1),
            as in the authors' code (the paper's Σ_i Â(i, j) = 1 under Eq. 8 is ambiguous about the axis).
            Only diag(Â) is computed: q_i·k_i minus the row log-sum-exp over keys.
- Eq. 10-12 POI: L_agg = MSE(p^CT(I_{t+δ}), p^CT(Crop(I_{t+δ}))); S = the CT's attention row over the patches
            in the last encoder layer while encoding I_{t+δ} (heads averaged, sums to 1); W = diag(Â) ⊙ S;
            P_dma = W ⊙ V(P_{t/s}).
- Eq. 13-15 L = γ·L_r + β·L_agg, L_r = MSE(y'_t, I_t): the decoder reconstructs I_t from I_{t/s}.

Inputs are f0 = I_t and f1 = I_{t+δ}, float (B, 3, H, W) in [0, 1]. The frame gap δ is a property of the data (the
shards), not of the model. Paper/authors' code differences are `MuBERTConfig` switches: `dma`, `poi` ("mse" paper,
"dino" authors: DINO self-distillation of the CT with an EMA teacher, "off"), `gamma`/`beta`, `swap_mode` ("block"
paper, "token" authors), `swap_ratio`, `norm_pix_loss`, sizes. One choice of ours: `dma_gate_scale` multiplies
diag(Â) and S by N_p each (a uniform attention gives gate 1), because the literal gates are ~1/N_p (~1/N_p² for W)
and would shrink P_dma below the LayerNorm eps of the decoder; turn it off for the literal Eq. 9/12.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from mer_data import MerDataError
from mubert.attention import ct_attention_row, diag_attention
from mubert.swap import apply_swap, block_mask, random_resized_crop, token_mask


@dataclass(frozen=True)
class MuBERTConfig:
    """Model and pretraining-objective settings. Build with `tiny()` / `base()` and `dataclasses.replace`."""

    image_size: int = 224            # input side H = W, px (frames are square after alignment)
    patch_size: int = 8              # ps, px; N_p = (image_size / ps)²
    in_chans: int = 3                # C
    dim: int = 512                   # encoder width d
    depth: int = 4                   # L_e encoder blocks
    heads: int = 4                   # encoder attention heads (authors' ViT-S/8 setting; the paper is silent)
    decoder_dim: int = 512           # decoder width (paper: same d as the encoder)
    decoder_depth: int = 4           # L_d decoder blocks
    decoder_heads: int = 4           # decoder attention heads
    mlp_ratio: float = 4.0           # MLP hidden width / block width
    ln_eps: float = 1e-6             # LayerNorm epsilon (authors' code)
    dma: bool = True                 # Diagonal Micro-Attention on (paper) / off (authors' released checkpoint)
    dma_gate_scale: bool = True      # multiply diag(Â) and S by N_p so a uniform gate is 1 (False: literal Eq. 9/12)
    dma_chunk: int = 256             # queries per chunk when computing the row log-sum-exp of Â (memory B·chunk·N)
    poi: str = "mse"                 # "mse" (paper Eq. 10-12), "dino" (authors: EMA-teacher distillation), "off"
    gamma: float = 1.0               # weight of the reconstruction loss L_r
    beta: float = 1.0                # weight of the agreement loss L_agg
    swap_mode: str = "block"         # "block" (Algorithm 1) or "token" (authors: independent patches)
    swap_ratio: float = 0.5          # r_s, fraction of patches of I_t replaced by I_{t+δ}
    swap_min_block: int = 16         # min_bs, patches per block
    swap_aspect: tuple[float, float] = (0.3, 1 / 0.3)  # block aspect-ratio range (rows/columns)
    crop_scale: tuple[float, float] = (0.4, 1.0)        # Crop(I_{t+δ}) area as a fraction of the image
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)    # Crop(I_{t+δ}) width/height range
    norm_pix_loss: bool = False      # reconstruct per-patch normalized pixels (authors' option) instead of raw
    dino_out_dim: int = 4096         # poi="dino": prototypes of the projection head
    dino_hidden: int = 1024          # poi="dino": hidden width of the projection head
    dino_bottleneck: int = 256       # poi="dino": L2-normalized bottleneck before the prototypes
    dino_teacher_temp: float = 0.04  # poi="dino": teacher softmax temperature
    dino_student_temp: float = 0.1   # poi="dino": student softmax temperature
    dino_center_momentum: float = 0.9  # poi="dino": EMA of the teacher-output centre
    ema_momentum: float = 0.996      # poi="dino": teacher weights ← m·teacher + (1−m)·student per step

    def __post_init__(self) -> None:
        checks = [
            (self.image_size % self.patch_size == 0, "image_size must be a multiple of patch_size"),
            (self.dim % self.heads == 0 and self.dim % 4 == 0, "dim must divide by heads and by 4"),
            (self.decoder_dim % self.decoder_heads == 0 and self.decoder_dim % 4 == 0,
             "decoder_dim must divide by decoder_heads and by 4"),
            (self.poi in ("mse", "dino", "off"), f"poi must be mse, dino or off, got {self.poi!r}"),
            (self.swap_mode in ("block", "token"), f"swap_mode must be block or token, got {self.swap_mode!r}"),
            (0.0 < self.swap_ratio < 1.0, "swap_ratio must be in (0, 1)"),
            (self.swap_min_block >= 1 and self.dma_chunk >= 1, "swap_min_block and dma_chunk must be ≥ 1"),
            (0 < self.swap_aspect[0] <= 1 <= self.swap_aspect[1], "swap_aspect must be (a ≤ 1, b ≥ 1)"),
            (0 < self.crop_scale[0] <= self.crop_scale[1] <= 1, "crop_scale must be 0 < lo ≤ hi ≤ 1"),
            (0 < self.crop_ratio[0] <= self.crop_ratio[1], "crop_ratio must be 0 < lo ≤ hi"),
            (self.gamma >= 0 and self.beta >= 0, "gamma and beta must be ≥ 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise MerDataError(f"μ-BERT config: {message}")

    @property
    def grid(self) -> tuple[int, int]:
        """Patch grid (h, w)."""
        side = self.image_size // self.patch_size
        return side, side

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "MuBERTConfig":
        """Inverse of `to_dict` (JSON turns tuples into lists); unknown keys are an error naming them."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise MerDataError(f"μ-BERT config: unknown fields {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    @classmethod
    def tiny(cls, **overrides) -> "MuBERTConfig":
        """CPU preset for tests and the demo: 112 px, 8 px patches (N=196), d=128, 2+2 blocks."""
        return replace(cls(image_size=112, dim=128, depth=2, decoder_dim=128, decoder_depth=2, dino_out_dim=256,
                           dino_hidden=256, dino_bottleneck=64), **overrides)

    @classmethod
    def base(cls, **overrides) -> "MuBERTConfig":
        """The paper: 224 px, 8 px patches (N=784), d=512, 4+4 blocks, 4 heads, MLP ratio 4."""
        return replace(cls(), **overrides)


tiny = MuBERTConfig.tiny
base = MuBERTConfig.base
PRESETS = {"tiny": tiny, "base": base}


def patchify(imgs: torch.Tensor, ps: int) -> torch.Tensor:
    """(B, C, H, W) → (B, N, ps·ps·C), patches in row-major order, values ordered (row, column, channel)."""
    b, c, h, w = imgs.shape
    x = imgs.reshape(b, c, h // ps, ps, w // ps, ps)
    return torch.einsum("bcipjq->bijpqc", x).reshape(b, (h // ps) * (w // ps), ps * ps * c)


def unpatchify(x: torch.Tensor, ps: int, grid: tuple[int, int], chans: int = 3) -> torch.Tensor:
    """(B, N, ps·ps·C) → (B, C, H, W); inverse of `patchify`."""
    b = x.shape[0]
    h, w = grid
    x = x.reshape(b, h, w, ps, ps, chans)
    return torch.einsum("bijpqc->bcipjq", x).reshape(b, chans, h * ps, w * ps)


def sincos_2d(dim: int, grid: tuple[int, int]) -> torch.Tensor:
    """Fixed 2-D sin-cos positions e(i) (Eq. 2): half the channels encode the row, half the column. → (N, dim)."""
    h, w = grid
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                                indexing="ij")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))  # (dim/4,)

    def encode(pos: torch.Tensor) -> torch.Tensor:
        angles = pos.reshape(-1, 1) * omega.reshape(1, -1)  # (N, dim/4)
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([encode(rows), encode(cols)], dim=1).float()


class Attention(nn.Module):
    """Multi-head self-attention through `scaled_dot_product_attention` (fused; no (T, T) matrix is stored)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, ct_row: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # (B, h, T, dh)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, h, T, dh)
        out = self.proj(out.transpose(1, 2).reshape(b, t, d))  # (B, T, D)
        return out, (ct_attention_row(q, k) if ct_row else None)


class Block(nn.Module):
    """Pre-norm transformer block (Eq. 3)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, eps: float):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, ct_row: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, row = self.attn(self.norm1(x), ct_row)
        x = x + a
        return x + self.mlp(self.norm2(x)), row


class Encoder(nn.Module):
    """μ-Encoder: α + e (Eq. 2), the CT token, L_e blocks and a final LayerNorm (Eq. 3-4)."""

    def __init__(self, cfg: MuBERTConfig):
        super().__init__()
        self.ps = cfg.patch_size
        self.patch_embed = nn.Linear(cfg.patch_size ** 2 * cfg.in_chans, cfg.dim)
        self.ct = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.register_buffer("pos", sincos_2d(cfg.dim, cfg.grid).unsqueeze(0), persistent=False)  # (1, N, D)
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp_ratio, cfg.ln_eps) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim, eps=cfg.ln_eps)

    def forward(self, imgs: torch.Tensor, ct_row: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, C, H, W) → tokens (B, 1+N, D) (CT first) and, if asked, S of the last layer (B, N)."""
        z = self.patch_embed(patchify(imgs, self.ps)) + self.pos  # (B, N, D)
        x = torch.cat([self.ct.expand(z.shape[0], -1, -1).to(z.dtype), z], dim=1)  # (B, 1+N, D)
        row = None
        for i, blk in enumerate(self.blocks):
            x, row = blk(x, ct_row=ct_row and i == len(self.blocks) - 1)
        return self.norm(x), row


class Decoder(nn.Module):
    """μ-Decoder (Eq. 5-6): width projection, fixed positions, L_d blocks, LayerNorm, linear to ps·ps·C."""

    def __init__(self, cfg: MuBERTConfig):
        super().__init__()
        self.embed = nn.Linear(cfg.dim, cfg.decoder_dim)
        pos = torch.cat([torch.zeros(1, cfg.decoder_dim), sincos_2d(cfg.decoder_dim, cfg.grid)])  # CT gets 0
        self.register_buffer("pos", pos.unsqueeze(0), persistent=False)  # (1, 1+N, Dd)
        self.blocks = nn.ModuleList(Block(cfg.decoder_dim, cfg.decoder_heads, cfg.mlp_ratio, cfg.ln_eps)
                                    for _ in range(cfg.decoder_depth))
        self.norm = nn.LayerNorm(cfg.decoder_dim, eps=cfg.ln_eps)
        self.pred = nn.Linear(cfg.decoder_dim, cfg.patch_size ** 2 * cfg.in_chans)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, 1+N, D) → per-patch pixels y_t (B, N, ps·ps·C); the CT position is dropped."""
        x = self.embed(tokens) + self.pos
        for blk in self.blocks:
            x, _ = blk(x)
        return self.pred(self.norm(x))[:, 1:]


class DinoHead(nn.Module):
    """poi="dino": MLP → L2-normalized bottleneck → prototype logits, applied to the CT feature."""

    def __init__(self, cfg: MuBERTConfig):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(cfg.dim, cfg.dino_hidden), nn.GELU(),
                                 nn.Linear(cfg.dino_hidden, cfg.dino_bottleneck))
        self.last = nn.Linear(cfg.dino_bottleneck, cfg.dino_out_dim, bias=False)

    def forward(self, ct: torch.Tensor) -> torch.Tensor:
        return self.last(F.normalize(self.mlp(ct), dim=-1))  # (B, K)


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class MuBERT(nn.Module):
    """μ-BERT. `model(f0, f1)` → {"loss", "loss_r", "loss_agg"}; f0 = I_t, f1 = I_{t+δ}, (B, 3, H, W) in [0, 1]."""

    def __init__(self, cfg: MuBERTConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        if cfg.dma:  # single-head cross-attention projections of Eq. 8-9
            self.dma_q, self.dma_k, self.dma_v = (nn.Linear(cfg.dim, cfg.dim) for _ in range(3))
        if cfg.poi == "dino":
            self.dino_head = DinoHead(cfg)
        self.apply(_init_weights)
        nn.init.normal_(self.encoder.ct, std=0.02)
        if cfg.poi == "dino":  # the EMA teacher starts as a copy of the student and never gets gradients
            self.teacher = copy.deepcopy(self.encoder).requires_grad_(False)
            self.teacher_head = copy.deepcopy(self.dino_head).requires_grad_(False)
            self.register_buffer("dino_center", torch.zeros(1, cfg.dino_out_dim))
            self._teacher_mean: torch.Tensor | None = None  # last batch's mean teacher logits, for ema_update

    def swap_blocks(self, f0: torch.Tensor, f1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """I_{t/s} (B, C, H, W) and the swap mask (B, N): patches of f1 put into f0 (Algorithm 1 or per token)."""
        cfg = self.cfg
        if cfg.swap_mode == "block":
            mask = block_mask(f0.shape[0], cfg.grid, cfg.swap_ratio, cfg.swap_min_block, cfg.swap_aspect, f0.device)
        else:
            mask = token_mask(f0.shape[0], cfg.grid, cfg.swap_ratio, f0.device)
        return apply_swap(f0, f1, mask), mask.flatten(1)

    def forward_encoder(self, imgs: torch.Tensor, ct_row: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, C, H, W) → P (B, 1+N, D), CT first; with ct_row also S (B, N) of the last layer (Eq. 11)."""
        return self.encoder(imgs, ct_row)

    def dma(self, p_query: torch.Tensor, p_key: torch.Tensor,
            s: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 8-9 / 12. p_query = P_{t+δ}, p_key = P_{t/s}, both (B, 1+N, D); s = S (B, N) or None.

        Returns P_dma = W ⊙ V(P_{t/s}) (B, N, D) and diag(Â) (B, N) (unscaled, float32).
        """
        q = self.dma_q(p_query[:, 1:])  # (B, N, D)
        k = self.dma_k(p_key[:, 1:])
        v = self.dma_v(p_key[:, 1:])
        diag = diag_attention(q, k, self.cfg.dma_chunk)  # (B, N)
        n = diag.shape[1] if self.cfg.dma_gate_scale else 1
        w = diag * n if s is None else (diag * n) * (s * n)
        return (w.unsqueeze(-1) * v.float()).to(v.dtype), diag

    def forward_decoder(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, 1+N, D) → y_t (B, N, ps·ps·C)."""
        return self.decoder(tokens)

    def forward_loss(self, target_imgs: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """L_r (Eq. 14): MSE between y_t (B, N, ps·ps·C) and the patches of I_t, averaged over all patches."""
        target = patchify(target_imgs, self.cfg.patch_size).float()
        if self.cfg.norm_pix_loss:
            mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        return F.mse_loss(pred.float(), target)

    def poi(self, ct_full: torch.Tensor, ct_crop: torch.Tensor, f1: torch.Tensor) -> torch.Tensor:
        """L_agg. ct_full = p^CT(I_{t+δ}), ct_crop = p^CT(Crop(I_{t+δ})), (B, D); f1 feeds the DINO teacher."""
        if self.cfg.poi == "mse":  # Eq. 10, 15
            return F.mse_loss(ct_full.float(), ct_crop.float())
        cfg = self.cfg
        with torch.no_grad():  # teacher sees the full frame, the student the crop
            t = self.teacher_head(self.teacher(f1)[0][:, 0]).float()  # (B, K)
            self._teacher_mean = t.mean(0, keepdim=True)
            target = F.softmax((t - self.dino_center) / cfg.dino_teacher_temp, dim=-1)
        s = self.dino_head(ct_crop).float() / cfg.dino_student_temp
        return -(target * F.log_softmax(s, dim=-1)).sum(-1).mean()

    def forward(self, f0: torch.Tensor, f1: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg, b = self.cfg, f0.shape[0]
        x_ts, _ = self.swap_blocks(f0, f1)  # (B, C, H, W)
        views = [x_ts]
        if cfg.dma or cfg.poi != "off":
            views.append(f1)
        if cfg.poi != "off":
            views.append(random_resized_crop(f1, cfg.crop_scale, cfg.crop_ratio))
        # One encoder call over all views (shared weights): (V·B, 1+N, D), S rows for every view.
        tokens, rows = self.forward_encoder(torch.cat(views), ct_row=cfg.dma and cfg.poi != "off")
        parts = tokens.split(b)
        p_ts = parts[0]
        if cfg.dma:
            s = rows[b:2 * b] if rows is not None else None  # S of I_{t+δ}
            p_dma, _ = self.dma(parts[1], p_ts, s)  # query I_{t+δ}; keys, values I_{t/s}
            dec_in = torch.cat([p_ts[:, :1], p_dma], dim=1)  # CT of I_{t/s} + P_dma, (B, 1+N, D)
        else:
            dec_in = p_ts
        loss_r = self.forward_loss(f0, self.forward_decoder(dec_in))  # reconstruct I_t from I_{t/s}
        if cfg.poi != "off":
            loss_agg = self.poi(parts[1][:, 0], parts[2][:, 0], f1)
        else:
            loss_agg = torch.zeros((), device=f0.device)
        return {"loss": cfg.gamma * loss_r + cfg.beta * loss_agg, "loss_r": loss_r, "loss_agg": loss_agg}

    def features(self, onset: torch.Tensor, apex: torch.Tensor) -> torch.Tensor:
        """Fine-tuning backbone (encoder + DMA): P_dma (B, N, D) with I_t = onset (keys), I_{t+δ} = apex (query).

        No swapping. With dma=False there is no DMA, and the features are P(apex) − P(onset) over the patches.
        """
        b = onset.shape[0]
        tokens, rows = self.forward_encoder(torch.cat([onset, apex]), ct_row=self.cfg.dma and self.cfg.poi != "off")
        p_on, p_ap = tokens.split(b)
        if not self.cfg.dma:
            return p_ap[:, 1:] - p_on[:, 1:]
        return self.dma(p_ap, p_on, rows[b:] if rows is not None else None)[0]

    @torch.no_grad()
    def movement_maps(self, onset: torch.Tensor, apex: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-patch maps (B, N) in float32, reshape to cfg.grid: "diag" = diag(Â), "s" = S of the apex, "w" = their
        product W (Eq. 12). Unscaled: diag(Â) entries are probabilities and S sums to 1 over the patches."""
        if not self.cfg.dma:
            raise MerDataError("movement maps need a model trained with dma=True")
        b = onset.shape[0]
        tokens, rows = self.forward_encoder(torch.cat([onset, apex]), ct_row=True)
        p_on, p_ap = tokens.split(b)
        _, diag = self.dma(p_ap, p_on)
        s = rows[b:]
        return {"diag": diag, "s": s, "w": diag * s}

    @torch.no_grad()
    def ema_update(self) -> None:
        """Call after every optimizer step. poi="dino": teacher ← m·teacher + (1−m)·student, and the centre of the
        teacher outputs moves toward the last batch's mean. Otherwise a no-op."""
        if self.cfg.poi != "dino":
            return
        m = self.cfg.ema_momentum
        for student, teacher in ((self.encoder, self.teacher), (self.dino_head, self.teacher_head)):
            for p_s, p_t in zip(student.parameters(), teacher.parameters()):
                p_t.lerp_(p_s.detach(), 1.0 - m)
        if self._teacher_mean is not None:
            self.dino_center.lerp_(self._teacher_mean, 1.0 - self.cfg.dino_center_momentum)
            self._teacher_mean = None
