"""``python -m asl.envcheck``: check the installed stack imports and works together (run by ``make``).

mediapipe brings ``opencv-contrib-python`` beside albumentations' ``opencv-python-headless``; both
install the ``cv2`` package. This checks that one working ``cv2`` is importable and that the
libraries asl needs run side by side with this numpy.
"""

import sys


def main() -> int:
    problems = []
    try:
        import cv2
        import numpy as np

        img = np.zeros((8, 8, 3), np.uint8)
        cv2.resize(cv2.cvtColor(img, cv2.COLOR_RGB2HSV), (4, 4))
        ok, _ = cv2.imencode(".png", img)
        assert ok
    except Exception as e:  # report every broken piece, not just the first
        problems.append(f"cv2: {e!r}")
    for module in ("torch", "torchvision", "pytorch_lightning", "hydra", "albumentations", "kornia", "torchmetrics"):
        try:
            __import__(module)
        except Exception as e:
            problems.append(f"{module}: {e!r}")
    try:
        import mediapipe as mp

        mp.solutions.hands.Hands(static_image_mode=True).close()
    except ImportError:
        print("note: mediapipe (extra 'hands') is not installed: pip install -e '.[hands]'")
    except Exception as e:
        problems.append(f"mediapipe: {e!r}")
    if problems:
        print("environment check failed:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    import cv2
    import numpy as np

    print(f"environment ok: numpy {np.__version__}, cv2 {cv2.__version__} ({cv2.__file__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
