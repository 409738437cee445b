"""μ-BERT settings: `MuBERTConfig`, its two sizes (`tiny`, `base`) and the objectives of Table 6 and the released code.

A preset is named OBJECTIVE-SIZE (`mb2-base`, `mae-tiny`, `authors-base`); a bare size (`tiny`, `base`) is the full
μ-BERT of the paper (`mb3`). Objectives, as overrides of a size:
    mb1      Blockwise Swapping only: no DMA, no POI (Table 6 "MB1")
    mb2      + DMA (Eq. 8-9) (Table 6 "MB2")
    mb3      + DMA + POI (Eq. 10-12): the paper's μ-BERT (Table 6 "MB3")
    mae      Table 6's MAE baseline on the same encoder/decoder: random masking of I_t, loss on the masked patches
    authors  the authors' released code (github uark-cviu/Micron-BERT, models/mae.py): DMA with an output projection, no
             S gate, patch tokens only into the decoder, [col | row] positions, ImageNet-normalised pixels, per-token
             swapping and DINO self-distillation of the class token. Their released checkpoint was trained with
             `dma="full"` and without DINO (`mer-eval import-checkpoint` sets both).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from mer_data import MerDataError


@dataclass(frozen=True)
class MuBERTConfig:
    """Model and pretraining-objective settings. Build with `preset_config(name)` / `tiny()` / `base()`."""

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
    objective: str = "mubert"        # "mubert" (swap, DMA, POI; reconstruct I_t) or "mae" (Table 6's MAE baseline)
    mask_ratio: float = 0.75         # objective="mae": fraction of I_t's patches hidden from the encoder (MAE's default)
    dma: str = "diag"                # "diag": Eq. 8-9; "full": the released code's diag_att=False, a full cross-attention
    #                                  Âᵀ V(P_{t/s}); "off": no DMA, the decoder gets P_{t/s} (Table 6 MB1)
    dma_proj: bool = False           # a linear projection after DMA (released code; the paper has none)
    dma_gate_scale: bool = True      # multiply diag(Â) and S by N_p each so a uniform gate is 1 (ours; False: literal)
    dma_chunk: int = 256             # keys per chunk when computing the log-sum-exp of Â (memory B·chunk·N)
    poi: str = "mse"                 # "mse" (paper Eq. 10-12), "dino" (released code: DINO on the class token), "off"
    poi_gate: bool = True            # POI on: W = diag(Â) ⊙ S gates V (Eq. 12); False: diag(Â) alone (released code)
    decoder_ct: bool = True          # the CT token enters the decoder with the patches (Eq. 2-5 decode P, CT included);
    #                                  False: patch tokens only (released code)
    pos_layout: str = "row_col"      # halves of the sin-cos table: [row | col], or the released code's [col | row]
    input_norm: str = "none"         # "none": frames in [0, 1]; "imagenet": (x − mean)/std inside the model, on the
    #                                  encoder input and the reconstruction target alike (released code's inputs)
    gamma: float = 1.0               # weight of the reconstruction loss L_r
    beta: float = 1.0                # weight of the agreement loss L_agg
    swap_mode: str = "block"         # "block" (Algorithm 1) or "token" (authors: independent patches)
    swap_ratio: float = 0.5          # r_s, fraction of patches of I_t replaced by I_{t+δ}
    swap_min_block: int = 16         # min_bs, patches per block
    swap_aspect: tuple[float, float] = (0.3, 1 / 0.3)  # block aspect-ratio range (rows/columns)
    crop_scale: tuple[float, float] = (0.4, 1.0)        # Crop(I_{t+δ}) area as a fraction of the image
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)    # Crop(I_{t+δ}) width/height range
    crop_size: int = 0               # poi="mse": side, px, at which Crop(I_{t+δ}) is encoded; 0 = image_size (paper),
    #                                  smaller = a low-resolution local crop (DINO-style: fewer tokens, resized positions)
    norm_pix_loss: bool = False      # reconstruct per-patch normalized pixels (authors' option) instead of raw
    dino_out_dim: int = 128          # poi="dino": prototypes of the head (released code's default out_dim)
    dino_hidden: int = 2048          # poi="dino": hidden width of the 3-layer head (DINOHead default)
    dino_bottleneck: int = 256       # poi="dino": L2-normalised bottleneck before the weight-normed prototypes
    dino_local_crops: int = 8        # poi="dino": local crops besides the 2 global ones (released code's default)
    dino_local_size: int = 96        # poi="dino": side of a local crop, px (DINO's 96)
    dino_global_scale: tuple[float, float] = (0.4, 1.0)  # poi="dino": global crop area fraction (DINO's)
    dino_local_scale: tuple[float, float] = (0.05, 0.4)  # poi="dino": local crop area fraction (DINO's)
    dino_teacher_temp: float = 0.04  # poi="dino": teacher softmax temperature after the warmup
    dino_warmup_teacher_temp: float = 0.04  # poi="dino": teacher temperature at step 0
    dino_warmup_frac: float = 0.0    # poi="dino": fraction of the steps over which it rises linearly to the final one
    dino_student_temp: float = 0.1   # poi="dino": student softmax temperature
    dino_center_momentum: float = 0.9  # poi="dino": EMA of the teacher-output centre
    ema_momentum: float = 0.996      # poi="dino": teacher EMA momentum at step 0, rising to 1 on a cosine over the run

    def __post_init__(self) -> None:
        ps = self.patch_size
        checks = [
            (self.image_size % ps == 0, "image_size must be a multiple of patch_size"),
            (self.dim % self.heads == 0 and self.dim % 4 == 0, "dim must divide by heads and by 4"),
            (self.decoder_dim % self.decoder_heads == 0 and self.decoder_dim % 4 == 0,
             "decoder_dim must divide by decoder_heads and by 4"),
            (self.objective in ("mubert", "mae"), f"objective must be mubert or mae, got {self.objective!r}"),
            (self.objective == "mubert" or (self.dma, self.poi) == ("off", "off"),
             "objective mae uses neither DMA nor POI: set dma=off and poi=off"),
            (0.0 < self.mask_ratio < 1.0, "mask_ratio must be in (0, 1)"),
            (self.dma in ("diag", "full", "off"), f"dma must be diag, full or off, got {self.dma!r}"),
            (self.poi in ("mse", "dino", "off"), f"poi must be mse, dino or off, got {self.poi!r}"),
            (not (self.dma == "full" and self.poi != "off" and self.poi_gate),
             "dma=full has no diagonal for S to gate: set poi_gate=false or poi=off"),
            (self.pos_layout in ("row_col", "col_row"), f"pos_layout must be row_col or col_row, got {self.pos_layout!r}"),
            (self.input_norm in ("none", "imagenet"), f"input_norm must be none or imagenet, got {self.input_norm!r}"),
            (self.swap_mode in ("block", "token"), f"swap_mode must be block or token, got {self.swap_mode!r}"),
            (0.0 < self.swap_ratio < 1.0, "swap_ratio must be in (0, 1)"),
            (self.swap_min_block >= 1 and self.dma_chunk >= 1, "swap_min_block and dma_chunk must be ≥ 1"),
            (0 < self.swap_aspect[0] <= 1 <= self.swap_aspect[1], "swap_aspect must be (a ≤ 1, b ≥ 1)"),
            (0 < self.crop_scale[0] <= self.crop_scale[1] <= 1, "crop_scale must be 0 < lo ≤ hi ≤ 1"),
            (0 < self.crop_ratio[0] <= self.crop_ratio[1], "crop_ratio must be 0 < lo ≤ hi"),
            (self.crop_size % ps == 0 and 0 <= self.crop_size <= self.image_size,
             "crop_size must be 0 or a multiple of patch_size up to image_size"),
            (self.poi != "dino" or (self.dino_local_size % ps == 0 and 0 < self.dino_local_size <= self.image_size),
             "dino_local_size must be a multiple of patch_size up to image_size"),
            (self.dino_local_crops >= 0 and 0 <= self.dino_warmup_frac < 1,
             "dino_local_crops must be ≥ 0 and dino_warmup_frac in [0, 1)"),
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

    @property
    def s_gates_dma(self) -> bool:
        """Eq. 12 applies: S of I_{t+δ} multiplies diag(Â)."""
        return self.dma == "diag" and self.poi != "off" and self.poi_gate

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
        """CPU size for tests and the demo: 112 px, 8 px patches (N=196), d=128, 2+2 blocks, small DINO head."""
        return replace(cls(image_size=112, dim=128, depth=2, decoder_dim=128, decoder_depth=2, dino_out_dim=256,
                           dino_hidden=256, dino_bottleneck=64, dino_local_size=48), **overrides)

    @classmethod
    def base(cls, **overrides) -> "MuBERTConfig":
        """The paper's size: 224 px, 8 px patches (N=784), d=512, 4+4 blocks, 4 heads, MLP ratio 4."""
        return replace(cls(), **overrides)


tiny = MuBERTConfig.tiny
base = MuBERTConfig.base
SIZES = {"tiny": tiny, "base": base}
OBJECTIVES: dict[str, dict] = {
    "mb1": dict(dma="off", poi="off"),
    "mb2": dict(dma="diag", poi="off"),
    "mb3": dict(dma="diag", poi="mse"),
    "mae": dict(objective="mae", dma="off", poi="off"),
    "authors": dict(dma="diag", dma_proj=True, dma_gate_scale=False, poi="dino", poi_gate=False, decoder_ct=False,
                    pos_layout="col_row", input_norm="imagenet", swap_mode="token"),
}
PRESETS = tuple(SIZES) + tuple(f"{objective}-{size}" for objective in OBJECTIVES for size in SIZES)


def preset_config(name: str, **overrides) -> MuBERTConfig:
    """The config of preset `name` (OBJECTIVE-SIZE, or a bare SIZE for mb3), with `overrides` applied last."""
    objective, _, size = name.rpartition("-")
    if size not in SIZES or (objective or "mb3") not in OBJECTIVES:
        raise MerDataError(f"--preset must be one of {', '.join(PRESETS)}, got {name!r}")
    return SIZES[size](**(OBJECTIVES[objective or "mb3"] | overrides))
