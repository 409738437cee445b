"""The μ-BERT diag(Â) signal as a spotter: one score per window from a (here untrained, tiny) model; gaps skipped."""

from __future__ import annotations

import numpy as np
import torch

from mer_data.spot.features import VideoFeatures
from mer_data.spot.mubert_signal import MuBertExtractor, MuBertSignalConfig, spot
from mubert.config import MuBERTConfig
from mubert.model import MuBERT


def test_signal_is_zero_for_a_still_face_and_positive_for_a_change():
    torch.manual_seed(0)
    model = MuBERT(MuBERTConfig.tiny(dma="diag")).eval()
    extract = MuBertExtractor(MuBertSignalConfig(k=3), 30.0, model)
    assert extract.offsets == (0, 3) and extract.size == 112
    face = np.random.default_rng(0).integers(0, 255, (112, 112, 3), dtype=np.uint8)
    moved = face.copy()
    moved[40:70, 30:80] = 255 - moved[40:70, 30:80]
    assert extract([face, face])[0] == 0.0  # the same frame twice: diag(Â) does not change
    assert extract([face, moved])[0] > 0.0


def test_spot_never_crosses_a_gap():
    signal = np.zeros(60)
    signal[20:24] = 1.0
    valid = np.ones(60, bool)
    valid[30:35] = False
    signal[30:35] = np.nan
    found = spot(VideoFeatures(np.arange(60), signal[:, None], valid, 30.0), MuBertSignalConfig(k=3))
    assert found and any(a <= 22 <= b for a, b, _ in found)
    assert all(not (a <= 34 and b >= 30) for a, b, _ in found)
