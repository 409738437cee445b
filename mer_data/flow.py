"""Optical flow and optical strain between two aligned frames: TV-L1 (OpenCV's DualTVL1), strain from its gradient.

`tvl1` is the Dual TV-L1 method of Zach, Pock and Bischof (2007) as opencv-contrib implements it
(`cv2.optflow.DualTVL1OpticalFlow_create`, its default parameters: tau 0.25, lambda 0.15, theta 0.3, 5 scales,
5 warps), the flow STSTNet, HTNet, OFF-ApexNet and SOFTNet / MEAN compute. `strain` is the optical strain magnitude
of Liong et al. (2014) that STSTNet and HTNet stack with the flow: with ε = ½(∇w + ∇wᵀ) for w = (u, v),
|ε| = sqrt(ε_xx² + ε_yy² + 2 ε_xy²), ε_xx = ∂u/∂x, ε_yy = ∂v/∂y, ε_xy = ½(∂u/∂y + ∂v/∂x); its derivatives are
forward differences (the plain discretisation) or 3×3 Sobel (smoother, less sensitive to flow noise).
"""

from __future__ import annotations

import cv2
import numpy as np

from mer_data.align import EYE_DISTANCE, EYE_LINE

STRAIN_METHODS = ("forward", "sobel")


def tvl1(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Grayscale uint8 (H, W) frames → float32 (2, H, W) flow (u, v) in px: first(x) ≈ second(x + (u, v))."""
    flow = cv2.optflow.DualTVL1OpticalFlow_create().calc(first, second, None)  # (H, W, 2)
    return np.ascontiguousarray(flow.transpose(2, 0, 1), dtype=np.float32)


def gradient(field: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(∂/∂x, ∂/∂y) of a (H, W) field, per pixel: forward differences f(x+1) − f(x) (0 on the last column/row),
    or the 3×3 Sobel kernels divided by 8 (a smoothed central difference, exact for quadratic fields)."""
    field = field.astype(np.float32)
    if method == "forward":
        dx = np.zeros_like(field)
        dy = np.zeros_like(field)
        dx[:, :-1] = field[:, 1:] - field[:, :-1]
        dy[:-1] = field[1:] - field[:-1]
        return dx, dy
    if method == "sobel":
        return (cv2.Sobel(field, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE) / 8,
                cv2.Sobel(field, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE) / 8)
    raise ValueError(f"strain method {method!r}: expected one of {', '.join(STRAIN_METHODS)}")


def strain(u: np.ndarray, v: np.ndarray, method: str = "forward") -> np.ndarray:
    """Optical strain magnitude (H, W) of the flow (u, v), see the module docstring."""
    ux, uy = gradient(u, method)
    vx, vy = gradient(v, method)
    exy = 0.5 * (uy + vx)
    return np.sqrt(ux ** 2 + vy ** 2 + 2 * exy ** 2).astype(np.float32)


def magnitude(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.hypot(u, v).astype(np.float32)


def nose_box(side: int) -> tuple[slice, slice]:
    """(rows, cols) of the nose region in an aligned face of `side` px: below the template's eye line, between the
    eyes. SOFTNet finds it from landmarks; our faces are aligned on the eyes, so the template places it."""
    d = EYE_DISTANCE * side  # eye distance in px
    y0, y1 = EYE_LINE * side + 0.35 * d, EYE_LINE * side + 0.8 * d
    x0, x1 = side / 2 - 0.2 * d, side / 2 + 0.2 * d
    return slice(int(round(y0)), int(round(y1))), slice(int(round(x0)), int(round(x1)))


def remove_head_motion(flow: np.ndarray) -> np.ndarray:
    """Flow (2, H, W) less the mean flow of the nose region (global head motion, as SOFTNet subtracts it)."""
    rows, cols = nose_box(flow.shape[1])
    return flow - flow[:, rows, cols].mean(axis=(1, 2), keepdims=True)
