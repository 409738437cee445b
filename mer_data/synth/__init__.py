"""The synthetic datasets: format-faithful miniatures of every dataset with an adapter, and of the composites.

`generate("samm", Path("data/samm"))` writes a tree laid out as the real release (folders, file names, annotation sheet
with its quirks) whose frames show the scikit-image astronaut with a small, emotion-specific facial movement rising from
onset to apex and falling to offset; with `motion="drift"` or `"hard"` the head also moves (see motion.py). Same seed,
same bytes. Each tree is written under a temporary name and renamed into place, so a root that exists is complete; it
also holds `mer-data-synth.json` (the config and the ground truth) and `mer-data-synth-eyes.npz` (the true eye
positions of every frame, read with `load_eye_truth(root)`).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from mer_data import MerDataError
from mer_data.datasets import COMPOSITES
from mer_data.synth.layouts import Plan, Tree, write_casme2, write_casme3, write_samm, write_smic
from mer_data.synth.layouts_clips import write_4dme, write_casme, write_casme3c, write_mmew
from mer_data.synth.layouts_long import write_casme_sq, write_samm_lv
from mer_data.synth.motion import ABSENT, COVERED, EYES_FILE, MOTIONS, VISIBLE, EyeTruth, load_eye_truth

DATASETS = ("casme2", "samm", "smic", "casme3", "casme", "casme_sq", "samm_lv", "mmew", "4dme", "casme3c", "megc2019",
            "cd5me")
COMPOSITE = COMPOSITES  # composite → the datasets it holds, each in ROOT/<name>/
TRUTH_FILE = "mer-data-synth.json"  # config and ground truth, written into each dataset root
WRITERS = {"casme2": write_casme2, "samm": write_samm, "smic": write_smic, "casme3": write_casme3,
           "casme": write_casme, "casme_sq": write_casme_sq, "samm_lv": write_samm_lv, "mmew": write_mmew,
           "4dme": write_4dme, "casme3c": write_casme3c}  # dataset → the function writing its tree
MAX_SUBJECTS = 99  # CASME II subject folders are two digits
MAX_CLIPS = 40  # per subject; keeps clip names (EP02…EP41, letters a…t) in their real patterns
LONG_VIDEOS = ("casme3",)  # datasets whose takes are long videos that --video-frames can lengthen

__all__ = ["ABSENT", "COVERED", "DATASETS", "EYES_FILE", "MOTIONS", "VISIBLE", "EyeTruth", "SynthConfig", "Tree",
           "default_out", "generate", "load_eye_truth", "synthesize"]


def default_out(dataset: str) -> Path:
    """Where the adapters look by default: data/<dataset>, or data/ for the composite."""
    return Path("data") if dataset in COMPOSITE else Path("data") / dataset


@dataclass(frozen=True)
class SynthConfig:
    """Resolved settings of `mer-data synth`."""

    dataset: str = "casme2"  # casme2 | samm | smic | casme3 | megc2019
    out: Path | None = None  # dataset root to write (for megc2019 the folder that gets casme2/ samm/ smic/)
    subjects: int = 3  # subjects per dataset
    clips_per_subject: int = 4  # annotated micro-expressions per subject (casme3: ≥ 2, two or three per video)
    video: bool = False  # write clips as video files (.avi MJPG; casme3 color.mp4) instead of frame folders
    seed: int = 0  # master seed: the same seed writes the same bytes
    overwrite: bool = False  # replace an existing non-empty dataset root instead of refusing
    motion: str = "none"  # head motion: none (still) | drift (smooth pose drift) | hard (drift, cover, cutaway, cut, lean)
    video_frames: int = 0  # casme3: pad every video with neutral frames to at least this many (0: natural length)
    difficulty: float = 0.0  # 0: every subject one face (as before); up to 1: own identities, weaker movements, more noise

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise MerDataError(f"unknown dataset {self.dataset!r}: choose one of {', '.join(DATASETS)}")
        if not 1 <= self.subjects <= MAX_SUBJECTS:
            raise MerDataError(f"--subjects {self.subjects}: must be between 1 and {MAX_SUBJECTS}")
        if not 1 <= self.clips_per_subject <= MAX_CLIPS:
            raise MerDataError(f"--clips-per-subject {self.clips_per_subject}: must be between 1 and {MAX_CLIPS}")
        if self.dataset == "casme3" and self.clips_per_subject < 2:
            raise MerDataError("--clips-per-subject must be at least 2 for casme3 (each video holds 2+ MEs)")
        if self.seed < 0:
            raise MerDataError(f"--seed {self.seed}: must be >= 0")
        if self.motion not in MOTIONS:
            raise MerDataError(f"--motion {self.motion!r}: choose one of {', '.join(MOTIONS)}")
        if not 0.0 <= self.difficulty <= 1.0:
            raise MerDataError(f"--difficulty {self.difficulty}: must be between 0 and 1")
        if self.video_frames < 0:
            raise MerDataError(f"--video-frames {self.video_frames}: must be >= 0")
        if self.video_frames and self.dataset not in LONG_VIDEOS:
            raise MerDataError(f"--video-frames applies to {', '.join(LONG_VIDEOS)} only (its takes are long videos), "
                               f"not {self.dataset}")
        object.__setattr__(self, "out", Path(self.out) if self.out is not None else default_out(self.dataset))


def synthesize(cfg: SynthConfig) -> list[Tree]:
    """Write the tree(s) of `cfg` and return their summaries (one per dataset; three for megc2019)."""
    plan = Plan(cfg.subjects, cfg.clips_per_subject, cfg.video, cfg.seed, cfg.motion, cfg.video_frames, cfg.difficulty)
    parts = COMPOSITE.get(cfg.dataset)
    if parts is None:
        return [_write_tree(cfg.dataset, cfg.out, plan, cfg)]
    return [_write_tree(name, cfg.out / name, plan, cfg) for name in parts]


def generate(dataset: str, out: Path, *, subjects: int = 3, clips_per_subject: int = 4, video: bool = False,
             seed: int = 0, overwrite: bool = False, motion: str = "none", video_frames: int = 0,
             difficulty: float = 0.0) -> Path:
    """Write a synthetic `dataset` tree at `out` and return its root (for megc2019 the folder holding casme2/ samm/
    smic/). Raises MerDataError for bad arguments or when `out` already holds data (unless `overwrite`)."""
    cfg = SynthConfig(dataset, Path(out), subjects, clips_per_subject, video, seed, overwrite, motion, video_frames,
                      difficulty)
    synthesize(cfg)
    return cfg.out


def _write_tree(dataset: str, root: Path, plan: Plan, cfg: SynthConfig) -> Tree:
    """Write one dataset under a temporary sibling name, then rename it to `root` (replacing it if allowed)."""
    if root.exists() and (not root.is_dir() or any(root.iterdir())) and not cfg.overwrite:
        raise MerDataError(f"--out {root}: already exists and is not empty (pass --overwrite to replace it)")
    partial = root.with_name(f".{root.name}.partial")
    if partial.exists():  # left by an interrupted run
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        tree = WRITERS[dataset](partial, plan)
        _write_truth(partial / TRUTH_FILE, dataset, cfg, tree)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if root.is_dir():
        shutil.rmtree(root)
    elif root.exists():
        root.unlink()
    partial.rename(root)
    return _moved(tree, partial, root)


def _write_truth(path: Path, dataset: str, cfg: SynthConfig, tree: Tree) -> None:
    """The config (without the output path, so the bytes do not depend on it) and every ME written."""
    config = {k: v for k, v in asdict(cfg).items() if k not in ("out", "overwrite")}
    body = {"dataset": dataset, "config": config, "subjects": tree.subjects, "clips": tree.clips,
            "samples": tree.samples, "frames": tree.frames,
            "sheet": tree.sheet.relative_to(tree.root).as_posix() if tree.sheet else None, "truth": list(tree.truth)}
    path.write_text(json.dumps(body, indent=1) + "\n")


def _moved(tree: Tree, old: Path, new: Path) -> Tree:
    """The summary with its paths moved from the temporary root to the final one."""
    sheet = new / tree.sheet.relative_to(old) if tree.sheet else None
    return Tree(tree.dataset, new, tree.subjects, tree.clips, tree.samples, tree.frames, sheet, tree.truth)
