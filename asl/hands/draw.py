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
        cv2.putText(out, text, (4, 4 + 12 * t), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * t, (255, 0, 255), t, cv2.LINE_AA)
    return out
