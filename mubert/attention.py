"""The two attention pieces μ-BERT needs beyond a standard block, computed without any N×N matrix.

DMA (Eq. 8-9) needs only the diagonal of Â, and POI (Eq. 11) only the contextual token's attention row S. Both run in
float32 with autocast off: exp/logsumexp are not safe in bf16.
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint


def diag_attention(a: torch.Tensor, b: torch.Tensor, chunk: int) -> torch.Tensor:
    """diag(softmax(a bᵀ/√D, dim=-1)) without the N×N matrix: entry i is exp(a_i·b_i/√D − logsumexp_j a_i·b_j/√D).

    a, b: (B, N, D) → (B, N) float32; for every row a_i the softmax runs over all rows b_j. DMA (Eq. 8) calls it with
    a = K(P_{t/s}) and b = Q(P_{t+δ}): each key's softmax runs over the queries. The log-sum-exp runs over chunks of
    `chunk` rows of a; each chunk is checkpointed, so the backward pass recomputes its (B, chunk, N) logits instead of
    storing them.
    """
    with torch.autocast(a.device.type, enabled=False):  # float32: exp/logsumexp are not safe in bf16
        a, b = a.float(), b.float()
        scale = a.shape[-1] ** -0.5
        diag_logit = (a * b).sum(-1) * scale  # (B, N)
        keep_graph = torch.is_grad_enabled() and (a.requires_grad or b.requires_grad)
        parts = []
        for start in range(0, a.shape[1], chunk):
            a_c = a[:, start:start + chunk]  # (B, c, D)
            if keep_graph:
                parts.append(checkpoint(_row_logsumexp, a_c, b, scale, use_reentrant=False))
            else:
                parts.append(_row_logsumexp(a_c, b, scale))
        return torch.exp(diag_logit - torch.cat(parts, dim=1))


def _row_logsumexp(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    """(B, c, D), (B, N, D) → (B, c): log Σ_j exp(a_i·b_j·scale)."""
    return torch.logsumexp(torch.bmm(a, b.transpose(1, 2)) * scale, dim=-1)


def ct_attention_row(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """S (Eq. 11): the contextual token's attention over the patch keys, heads averaged.

    q, k: (B, heads, 1+N, dh) with the CT at index 0 → (B, N) float32, each row summing to 1 (the CT's own key is
    left out of the softmax, so S is a distribution over patches). Costs one 1×N row per head, not N×N.
    """
    with torch.autocast(q.device.type, enabled=False):
        scale = q.shape[-1] ** -0.5
        logits = torch.matmul(q[:, :, :1].float(), k[:, :, 1:].float().transpose(-2, -1)) * scale  # (B, h, 1, N)
        return logits.softmax(dim=-1).mean(dim=1).squeeze(1)
