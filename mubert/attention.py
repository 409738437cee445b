"""The two attention pieces μ-BERT needs beyond a standard block, computed without any N×N matrix.

DMA (Eq. 8-9) needs only the diagonal of Â = softmax(Q Kᵀ/√D) over keys, and POI (Eq. 11) only the contextual token's
attention row S. Both run in float32 with autocast off: exp/logsumexp are not safe in bf16.
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint


def diag_attention(q: torch.Tensor, k: torch.Tensor, chunk: int) -> torch.Tensor:
    """diag(softmax(q kᵀ/√D)) over keys, without the N×N matrix: exp(q_i·k_i/√D − logsumexp_j q_i·k_j/√D).

    q, k: (B, N, D) → (B, N) float32. The log-sum-exp runs over chunks of `chunk` queries; each chunk is
    checkpointed, so the backward pass recomputes its (B, chunk, N) logits instead of storing them.
    """
    with torch.autocast(q.device.type, enabled=False):  # float32: exp/logsumexp are not safe in bf16
        q, k = q.float(), k.float()
        scale = q.shape[-1] ** -0.5
        diag_logit = (q * k).sum(-1) * scale  # (B, N)
        keep_graph = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad)
        parts = []
        for start in range(0, q.shape[1], chunk):
            q_c = q[:, start:start + chunk]  # (B, c, D)
            if keep_graph:
                parts.append(checkpoint(_row_logsumexp, q_c, k, scale, use_reentrant=False))
            else:
                parts.append(_row_logsumexp(q_c, k, scale))
        return torch.exp(diag_logit - torch.cat(parts, dim=1))


def _row_logsumexp(q: torch.Tensor, k: torch.Tensor, scale: float) -> torch.Tensor:
    """(B, c, D), (B, N, D) → (B, c): log Σ_j exp(q_i·k_j·scale)."""
    return torch.logsumexp(torch.bmm(q, k.transpose(1, 2)) * scale, dim=-1)


def ct_attention_row(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """S (Eq. 11): the contextual token's attention over the patch keys, heads averaged.

    q, k: (B, heads, 1+N, dh) with the CT at index 0 → (B, N) float32, each row summing to 1 (the CT's own key is
    left out of the softmax, so S is a distribution over patches). Costs one 1×N row per head, not N×N.
    """
    with torch.autocast(q.device.type, enabled=False):
        scale = q.shape[-1] ** -0.5
        logits = torch.matmul(q[:, :, :1].float(), k[:, :, 1:].float().transpose(-2, -1)) * scale  # (B, h, 1, N)
        return logits.softmax(dim=-1).mean(dim=1).squeeze(1)
