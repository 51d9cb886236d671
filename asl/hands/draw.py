"""Draw a detected hand (skeleton, joints, crop box) on a photo: asl-predict and asl-explain use it."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from asl.hands.crop import hand_box
from asl.hands.features import EDGES


def draw_hand(image: np.ndarray, result: dict[str, Any] | None, margin: float = 0.2, label: str | None = None) -> np.ndarray:
    """A copy of the RGB ``image`` with the hand's landmarks, skeleton and square crop box drawn on
    it (``result`` as from :func:`asl.hands.detect.detect_files`), and ``label`` in the corner.
    Without a hand, only the label and "no hand"."""
    out = np.ascontiguousarray(image.copy())
    h, w = out.shape[:2]
    t = max(1, round(max(h, w) / 200))
    if result is not None:
        pts = [(int(round(x * w)), int(round(y * h))) for x, y, _ in result["landmarks"]]
        for a, b in EDGES:
            cv2.line(out, pts[a], pts[b], (0, 255, 0), t, cv2.LINE_AA)
        for p in pts:
            cv2.circle(out, p, t + 1, (255, 0, 0), -1, cv2.LINE_AA)
        x0, y0, x1, y1 = hand_box(result, margin, w / h)
        cv2.rectangle(out, (int(x0 * w), int(y0 * h)), (int(x1 * w), int(y1 * h)), (255, 255, 0), t)
    text = " ".join(s for s in (label, None if result is not None else "no hand") if s)
    if text:
        draw_label(out, text)
    return out


def draw_label(image: np.ndarray, text: str, share: float = 0.07) -> None:
    """``text`` in white on a black box in the top-left corner of ``image`` (in place), its letters
    ``share`` of the photo's shorter side tall (at least 9 px): readable on a 200 px photo and on a
    4000 px one; shrunk to fit the width if needed."""
    h, w = image.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    height = max(9.0, share * min(h, w))
    scale = height / cv2.getTextSize("A", font, 1.0, 1)[0][1]
    thick = max(1, round(scale * 1.6))
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    pad = max(2, round(th / 3))
    if tw + 2 * pad > w:  # a long label on a narrow photo
        scale *= (w - 2 * pad) / tw
        thick = max(1, round(scale * 1.6))
        (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    cv2.rectangle(image, (0, 0), (tw + 2 * pad, th + base + 2 * pad), (0, 0, 0), -1)
    cv2.putText(image, text, (pad, pad + th), font, scale, (255, 255, 255), thick, cv2.LINE_AA)
