"""Micro-movement maps as in the paper's Figure 7: diag(Â) (changed patches), the POI map S, and their product W.

Each map is per patch (the model's grid); it is upsampled to the frame, min-max normalised, coloured and blended over the
apex frame. One figure row per (onset, apex) pair: onset | apex | |apex − onset| ×10 | diag(Â) | S | W | Δdiag(Â).
With `display="paper"` the diag(Â) tile follows the paper's display convention instead, as the authors' code computes
it (get_attmap in models/mae.py): 1 − diag(Â)/max diag(Â), coloured on a fixed [0, 1] scale, so a patch whose diagonal
attention is low shows hot. Their code takes the max over the whole batch it is given; we draw one pair at a time, so it
is the max of that pair's map.

The last tile, |diag(Â)(onset → apex) − diag(Â)(onset → onset)|, is ours, not the paper's: on a short pretraining
diag(Â) is dominated by the face's appearance, and subtracting the same map for a frame with no movement shows where
the model registers the change.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from mer_data import MerDataError
from mer_data.align import FaceDetector, eye_transform, locate_face, warp
from mubert.data import to_device
from mubert.model import MuBERT

TITLES = ("onset", "apex", "|apex-onset| x10", "diag(A)", "S (POI)", "W = diag(A)*S", "|diag(A) - still|")


DISPLAYS = ("minmax", "paper")


def overlay(frame: np.ndarray, patch_map: np.ndarray, alpha: float = 0.55, minmax: bool = True) -> np.ndarray:
    """A (h, w) per-patch map, min-max normalised (else clipped to [0, 1]), as a JET heat map blended over an RGB
    (H, W, 3) uint8 frame."""
    m = patch_map.astype(np.float64)
    span = m.max() - m.min()
    if minmax:
        m = (m - m.min()) / span if span > 0 else np.zeros_like(m)
    m = np.clip(m, 0.0, 1.0)
    heat = cv2.resize((m * 255).astype(np.uint8), frame.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    coloured = cv2.cvtColor(cv2.applyColorMap(heat, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(frame, 1 - alpha, coloured, alpha, 0)


@torch.no_grad()
def compute_maps(model: MuBERT, onset: np.ndarray, apex: np.ndarray) -> dict[str, np.ndarray]:
    """Maps of one pair of aligned RGB uint8 frames, each (grid_h, grid_w) float32: "diag", "s", "w", "change"."""
    model.eval()
    device = next(model.parameters()).device
    size = model.cfg.image_size
    x0 = to_device(torch.from_numpy(onset[None]), device, size)
    x1 = to_device(torch.from_numpy(apex[None]), device, size)
    both = model.movement_maps(torch.cat([x0, x0]), torch.cat([x1, x0]))  # (onset → apex), (onset → onset)
    maps = {k: v[:1] for k, v in both.items()}
    maps["change"] = (both["diag"][:1] - both["diag"][1:]).abs()
    return {k: v[0].float().reshape(model.cfg.grid).cpu().numpy() for k, v in maps.items()}


def paper_display(diag: np.ndarray) -> np.ndarray:
    """The authors' display of diag(Â): 1 − diag/max, in [0, 1]."""
    top = float(diag.max())
    return 1.0 - diag / top if top > 0 else np.ones_like(diag)


def figure_row(onset: np.ndarray, apex: np.ndarray, maps: dict[str, np.ndarray], label: str = "",
               display: str = "minmax") -> np.ndarray:
    """One row of the figure: onset, apex, amplified difference, then the maps over the apex (diag(Â) as `display`)."""
    diff = np.clip(np.abs(apex.astype(np.int16) - onset.astype(np.int16)) * 10, 0, 255).astype(np.uint8)
    diag = overlay(apex, paper_display(maps["diag"]), minmax=False) if display == "paper" else overlay(apex, maps["diag"])
    tiles = [onset, apex, diff, diag] + [overlay(apex, maps[k]) for k in ("s", "w", "change")]
    titles = TITLES[:3] + (("1-diag/max",) if display == "paper" else TITLES[3:4]) + TITLES[4:]
    row = np.hstack([_titled(t, title) for t, title in zip(tiles, titles)])
    if label:
        cv2.putText(row, label, (4, row.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
    return row


def _titled(tile: np.ndarray, title: str) -> np.ndarray:
    out = np.ascontiguousarray(tile.copy())
    cv2.putText(out, title, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def save_figure(rows: list[np.ndarray], path: Path) -> Path:
    """Stack figure rows and write them as a PNG (temp name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
    if not ok:
        raise MerDataError(f"could not encode {path}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.tobytes())
    tmp.replace(path)
    return path


def align_pair(onset: np.ndarray, apex: np.ndarray, model_path: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Align two raw frames of one clip with the single transform found on the onset (as the ingest does)."""
    with FaceDetector(model_path) as detector:
        face = locate_face(detector, [onset, apex])
    if face is None:
        raise MerDataError("no face found in the onset or apex frame; pass aligned frames with --no-align")
    matrix = eye_transform(face.right_eye, face.left_eye, size)
    return warp(onset, matrix, size), warp(apex, matrix, size)


def load_backbone(init: Path) -> MuBERT:
    """The μ-BERT of a mer-train checkpoint (.pt or .safetensors), in eval mode on the CPU."""
    from mubert import checkpoint
    from mubert.config import MuBERTConfig

    weights, config = checkpoint.load_weights(Path(init))
    model = MuBERT(MuBERTConfig.from_dict(config["model"]))
    model.load_state_dict(weights)
    return model.eval()


def map_figure(init: Path, out: Path, *, onset: Path | None = None, apex: Path | None = None, align: bool = True,
               face_model: Path | None = None, shards: Path | None = None, count: int = 4,
               display: str = "minmax") -> Path:
    """Draw the maps of one (onset, apex) pair of image files, or of the first `count` samples of labeled shards.

    display: "minmax" (every map min-max normalised) or "paper" (diag(Â) as 1 − diag/max, the authors' convention).
    """
    if display not in DISPLAYS:
        raise MerDataError(f"--display must be one of {', '.join(DISPLAYS)}, got {display!r}")
    from mer_data.facemodel import resolve_model
    from mer_data.frames import FrameError, read_image
    from mubert.data import finite_pipeline, list_shards

    model = load_backbone(init)
    rows = []
    if shards is not None:
        for batch in finite_pipeline(list_shards(shards), batch_size=count):
            for f0, f1, meta in zip(batch.get("f0", []), batch.get("f1", []), batch.get("meta", [])):
                f0, f1 = f0.numpy(), f1.numpy()
                label = f"{meta.get('sample_id', meta.get('key'))} {meta.get('emotion', '')}"
                rows.append(figure_row(f0, f1, compute_maps(model, f0, f1), label, display))
            break
        if not rows:
            raise MerDataError(f"--shards {shards}: no readable sample")
    else:
        if onset is None or apex is None:
            raise MerDataError("give --onset and --apex image files, or --shards DIR")
        try:
            f0, f1 = read_image(str(onset)), read_image(str(apex))
        except FrameError as exc:
            raise MerDataError(str(exc)) from None
        size = 224
        if align:
            f0, f1 = align_pair(f0, f1, str(resolve_model(face_model)), size)
        else:
            f0, f1 = (cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in (f0, f1))
        rows.append(figure_row(f0, f1, compute_maps(model, f0, f1), f"{onset.name} -> {apex.name}", display))
    return save_figure(rows, out)
