"""μ-BERT (Micron-BERT, Nguyen et al., CVPR 2023): the pretraining objectives and fine-tuning backbone as named steps.

Equations (numbered as in the paper):
- Eq. 1-6   μ-Encoder / μ-Decoder (mubert/transformer.py): patches + sin-cos positions + CT token, pre-norm blocks.
- Alg. 1    Blockwise Swapping (mubert/swap.py): I_{t/s} is I_t with ≥ r_s of its patches replaced, in
            rectangular blocks, by the patches of I_{t+δ} at the same positions.
- Eq. 8-9   DMA: Â = softmax(Q(P_{t+δ}) K(P_{t/s})ᵀ / √D) with Σ_i Â(i, j) = 1, i over the patches of I_{t+δ};
            P_dma = diag(Â) ⊙ V(P_{t/s}). Rows of Â are the queries (I_{t+δ}; at fine-tuning the apex), columns the
            keys (I_{t/s}; at fine-tuning the onset), and each column is a softmax over the queries. The paper omits
            the 1/√D that the authors' code (and ours) applies. Only diag(Â) is computed (mubert/attention.py).
            The released code computes the same diag(Â) with the projections' names swapped (its query is the
            swapped frame, its key I_{t+δ}, its softmax over I_{t+δ}); see mubert/authors.py.
- Eq. 10-12 POI: L_agg = MSE(p^CT(I_{t+δ}), p^CT(Crop(I_{t+δ}))); S = the CT's attention row over the patches
            in the last encoder layer while encoding I_{t+δ} (heads averaged, sums to 1); W = diag(Â) ⊙ S;
            P_dma = W ⊙ V(P_{t/s}).
- Eq. 13-15 L = γ·L_r + β·L_agg, L_r = MSE(y'_t, I_t): the decoder reconstructs I_t from I_{t/s}.

Inputs are f0 = I_t and f1 = I_{t+δ}, float (B, 3, H, W) in [0, 1]. The frame gap δ is a property of the data (the
shards), not of the model. Every difference from the released code is a `MuBERTConfig` field (mubert/config.py; the
README tabulates them). One choice of ours: `dma_gate_scale` multiplies diag(Â) and S by N_p each (a uniform attention
gives gate 1), because the literal gates are ~1/N_p (~1/N_p² for W) and would shrink P_dma below the LayerNorm eps of
the decoder. It is a constant factor that V's weights absorb, so the model family is Eq. 9/12's; turn it off for the
literal gates.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from mer_data import MerDataError
from mubert.attention import diag_attention
from mubert.config import MuBERTConfig
from mubert.dino import Dino, multi_crop
from mubert.swap import apply_swap, block_mask, random_resized_crop, token_mask
from mubert.transformer import Decoder, Encoder, patchify


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
        self.progress = 0.0  # fraction of the run done, set by the trainer (`set_progress`): DINO's schedules
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        if cfg.dma != "off":  # single-head cross-attention projections of Eq. 8-9
            self.dma_q, self.dma_k, self.dma_v = (nn.Linear(cfg.dim, cfg.dim) for _ in range(3))
            if cfg.dma_proj:
                self.dma_proj = nn.Linear(cfg.dim, cfg.dim)
        if cfg.poi == "dino":
            self.dino = Dino(cfg)
        self.apply(_init_weights)
        nn.init.normal_(self.encoder.ct, std=0.02)
        if cfg.objective == "mae":
            nn.init.normal_(self.decoder.mask_token, std=0.02)
        if cfg.poi == "dino":  # the EMA teacher starts as a copy of the student
            self.dino.start_teacher(self.encoder)

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

    def encode_views(self, views: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Encode named views with shared weights, one encoder call per resolution → ({name: (b, 1+n, D)}, S).

        S (B, N) is that of the view "ref" (I_{t+δ}) when Eq. 12 needs it, else None.
        """
        sides: dict[int, list[str]] = {}
        for name, x in views.items():
            sides.setdefault(x.shape[-1], []).append(name)
        out, s = {}, None
        for names in sides.values():
            want_s = self.cfg.s_gates_dma and "ref" in names
            tokens, rows = self.forward_encoder(torch.cat([views[n] for n in names]), ct_row=want_s)
            sizes = [views[n].shape[0] for n in names]
            out.update(zip(names, tokens.split(sizes)))
            if want_s:
                s = dict(zip(names, rows.split(sizes)))["ref"]
        return out, s

    def dma_diag(self, p_ref: torch.Tensor, p_ts: torch.Tensor) -> torch.Tensor:
        """diag(Â) of Eq. 8, (B, N) float32, from the patch tokens P_{t+δ} (queries) and P_{t/s} (keys), (B, N, D).

        Σ_i Â(i, j) = 1 over the queries i: for each key j the softmax runs over the patches of I_{t+δ}.
        """
        q, k = self.dma_q(p_ref), self.dma_k(p_ts)
        return diag_attention(k, q, self.cfg.dma_chunk)  # rows of k: softmax over q for each key

    def dma(self, p_ref: torch.Tensor, p_ts: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        """Eq. 8-9 / 12: P_dma (B, N, D) from the patch tokens P_{t+δ} and P_{t/s} (B, N, D); s = S (B, N) or None.

        dma="diag": W ⊙ V(P_{t/s}) with W = diag(Â) (⊙ S when given); dma="full": Âᵀ V(P_{t/s}), the released code's
        cross-attention (its query is the swapped frame, its softmax over I_{t+δ}); then the projection if dma_proj.
        """
        cfg = self.cfg
        v = self.dma_v(p_ts)  # (B, N, D)
        if cfg.dma == "full":  # out_j = Σ_i Â(i, j) v_i, fused: no (N, N) matrix is stored
            k, q = self.dma_k(p_ts).unsqueeze(1), self.dma_q(p_ref).unsqueeze(1)  # (B, 1, N, D)
            out = F.scaled_dot_product_attention(k, q, v.unsqueeze(1)).squeeze(1)
        else:
            diag = self.dma_diag(p_ref, p_ts)  # (B, N)
            n = diag.shape[1] if cfg.dma_gate_scale else 1
            w = diag * n if s is None else (diag * n) * (s * n)
            out = (w.unsqueeze(-1) * v.float()).to(v.dtype)
        return self.dma_proj(out) if cfg.dma_proj else out

    def forward_decoder(self, tokens: torch.Tensor, restore: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 1+N, D) or (B, N, D) (see `Decoder`) → y_t (B, N, ps·ps·C)."""
        return self.decoder(tokens, restore)

    def forward_loss(self, target_imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """L_r (Eq. 14): MSE between y_t (B, N, ps·ps·C) and the patches of I_t, averaged over all patches, or over the
        patches where `mask` (B, N) is 1 (MAE). The target is normalised like the encoder input (input_norm)."""
        target = patchify(self.encoder.pixels(target_imgs), self.cfg.patch_size).float()
        if self.cfg.norm_pix_loss:
            mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        per_patch = (pred.float() - target).pow(2).mean(-1)  # (B, N)
        return per_patch.mean() if mask is None else (per_patch * mask).sum() / mask.sum()

    def forward(self, f0: torch.Tensor, f1: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        if cfg.objective == "mae":
            return self.forward_mae(f0)
        views = {"ts": self.swap_blocks(f0, f1)[0]}  # I_{t/s} (B, C, H, W)
        if cfg.dma != "off" or cfg.poi == "mse":
            views["ref"] = f1
        if cfg.poi == "mse":
            views["crop"] = random_resized_crop(f1, cfg.crop_scale, cfg.crop_ratio, cfg.crop_size or None)
        if cfg.poi == "dino":
            views["global"], views["local"] = multi_crop(f1, cfg)
        enc, s = self.encode_views({k: v for k, v in views.items() if v.shape[0]})
        p_ts = enc["ts"]  # (B, 1+N, D)
        dec_in = p_ts
        if cfg.dma != "off":
            p_dma = self.dma(enc["ref"][:, 1:], p_ts[:, 1:], s)  # queries I_{t+δ}; keys, values I_{t/s}
            dec_in = torch.cat([p_ts[:, :1], p_dma], dim=1)  # CT of I_{t/s} + P_dma, (B, 1+N, D)
        if not cfg.decoder_ct:
            dec_in = dec_in[:, 1:]
        loss_r = self.forward_loss(f0, self.forward_decoder(dec_in))  # reconstruct I_t from I_{t/s}
        if cfg.poi == "mse":  # Eq. 10, 15
            loss_agg = F.mse_loss(enc["ref"][:, 0].float(), enc["crop"][:, 0].float())
        elif cfg.poi == "dino":
            local = enc["local"][:, 0] if "local" in enc else None
            loss_agg = self.dino.loss(enc["global"][:, 0], local, views["global"], self.progress)
        else:
            loss_agg = torch.zeros((), device=f0.device)
        return {"loss": cfg.gamma * loss_r + cfg.beta * loss_agg, "loss_r": loss_r, "loss_agg": loss_agg}

    def random_masking(self, b: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """MAE: per-sample random subsets → keep (B, n) indices of visible patches, restore (B, N), mask (B, N) 1 = hidden."""
        n_all = self.cfg.num_patches
        n_keep = int(n_all * (1 - self.cfg.mask_ratio))
        shuffle = torch.rand(b, n_all, device=device).argsort(dim=1)  # (B, N) random permutation
        restore = shuffle.argsort(dim=1)
        mask = torch.ones(b, n_all, device=device)
        mask[:, :n_keep] = 0
        return shuffle[:, :n_keep], restore, torch.gather(mask, 1, restore)

    def forward_mae(self, f0: torch.Tensor) -> dict[str, torch.Tensor]:
        """Table 6's MAE baseline: encode the visible patches of I_t, decode every patch, MSE on the hidden ones."""
        keep, restore, mask = self.random_masking(f0.shape[0], f0.device)
        tokens, _ = self.encoder(f0, keep=keep)  # (B, 1+n, D)
        loss_r = self.forward_loss(f0, self.forward_decoder(tokens, restore), mask)
        zero = torch.zeros((), device=f0.device)
        return {"loss": self.cfg.gamma * loss_r, "loss_r": loss_r, "loss_agg": zero}

    def features(self, onset: torch.Tensor, apex: torch.Tensor) -> torch.Tensor:
        """Fine-tuning backbone (encoder + DMA): P_dma (B, N, D) with I_t = onset (keys, values), I_{t+δ} = apex
        (queries). No swapping. With dma="off" there is no DMA, and the features are P(apex) − P(onset) over the patches.
        """
        b = onset.shape[0]
        tokens, rows = self.forward_encoder(torch.cat([onset, apex]), ct_row=self.cfg.s_gates_dma)
        p_on, p_ap = tokens.split(b)
        if self.cfg.dma == "off":
            return p_ap[:, 1:] - p_on[:, 1:]
        return self.dma(p_ap[:, 1:], p_on[:, 1:], rows[b:] if rows is not None else None)

    @torch.no_grad()
    def movement_maps(self, onset: torch.Tensor, apex: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-patch maps (B, N) in float32, reshape to cfg.grid: "diag" = diag(Â), "s" = S of the apex, "w" = their
        product W (Eq. 12). Unscaled: diag(Â) entries are probabilities and S sums to 1 over the patches."""
        if self.cfg.dma == "off":
            raise MerDataError("movement maps need a model with DMA (dma=diag or full)")
        b = onset.shape[0]
        tokens, rows = self.forward_encoder(torch.cat([onset, apex]), ct_row=True)
        p_on, p_ap = tokens.split(b)
        diag = self.dma_diag(p_ap[:, 1:], p_on[:, 1:])
        s = rows[b:]
        return {"diag": diag, "s": s, "w": diag * s}

    def set_progress(self, step: int, total: int) -> None:
        """Tell the model which step (0-based, of `total`) comes next: DINO's teacher temperature and momentum follow."""
        self.progress = step / max(1, total)

    @torch.no_grad()
    def ema_update(self) -> None:
        """Call after every optimizer step. poi="dino": the teacher and the centre of its outputs follow the student
        (mubert/dino.py). Otherwise a no-op."""
        if self.cfg.poi == "dino":
            self.dino.ema_update(self.encoder, self.progress)
