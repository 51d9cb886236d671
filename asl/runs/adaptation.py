"""Whether to keep an adapted model: a label-free check of AdaBN and self-training on the new photos.

Adapting to a new setting's photos can hurt: on other people's photos AdaBN and self-training lowered
accuracy on two of four sets (issue 26), and nothing labelled is there to notice. The check compares the
model as trained with the adapted one on the same new photos, from their predictions alone:

- ``prior_gap``: the total-variation distance between the share of photos predicted as each letter and the
  letters' prior (equal shares unless ``class_prior`` says otherwise), before and after. A model that
  swallows a letter, or piles photos onto a few, moves away from the prior.
- ``lost_letters``: letters the model as trained predicts for at least half of their prior share of the
  photos but the adapted model for under a quarter of it (a letter collapsing into another).
- ``agreement``: the share of photos on which both models predict the same letter. Adaptation is meant to
  correct a minority of predictions; one that changes most of them has replaced the model.

The adapted model is kept when no letter is lost, its ``prior_gap`` has not grown by more than
``max_gap_increase`` and ``agreement`` is at least ``min_agreement``; else the model as trained is used and
the reason is reported (metrics.json ``adaptation``). experiments/robustness/README.md measures which of the
signals foretold harm. Self-training also records reverse validation (:func:`asl.runs.self_train.reverse_accuracy`),
which is not part of the rule: its change did not foretell harm there.
"""

from __future__ import annotations

from typing import Any

import torch

KEEP_ADAPTED = ("check", "always")  # keep the adapted model when the check passes | always


def predicted_shares(probs: torch.Tensor) -> torch.Tensor:
    """(C,) the share of rows predicted as each class."""
    return torch.bincount(probs.argmax(1), minlength=probs.shape[1]).double() / max(len(probs), 1)


def signals(before: torch.Tensor, after: torch.Tensor, prior: torch.Tensor) -> dict[str, Any]:
    """The label-free signals of the module docstring, from (N, C) class probabilities of the same photos
    before and after adaptation and the (C,) prior."""
    shares_before, shares_after, prior = predicted_shares(before), predicted_shares(after), prior.double()
    lost = (shares_before >= 0.5 * prior) & (shares_after < 0.25 * prior) & (prior > 0)
    return {"prior_gap_before": float(0.5 * (shares_before - prior).abs().sum()),
            "prior_gap_after": float(0.5 * (shares_after - prior).abs().sum()),
            "agreement": float((before.argmax(1) == after.argmax(1)).double().mean()) if len(before) else 1.0,
            "lost_letters": lost.nonzero().squeeze(1).tolist()}


def decide(s: dict[str, Any], class_names: list[str], min_agreement: float = 0.7,
           max_gap_increase: float = 0.02) -> tuple[bool, str]:
    """(keep the adapted model?, why) from :func:`signals`."""
    if s["lost_letters"]:
        return False, f"letter(s) {''.join(class_names[i] for i in s['lost_letters'])} collapsed into others"
    if s["prior_gap_after"] > s["prior_gap_before"] + max_gap_increase:
        return False, (f"the predicted letters moved away from the prior (total-variation gap "
                       f"{s['prior_gap_before']:.3f} → {s['prior_gap_after']:.3f})")
    if s["agreement"] < min_agreement:
        return False, f"it changed {1 - s['agreement']:.0%} of the predictions (more than {1 - min_agreement:.0%})"
    return True, (f"no letter lost, prior gap {s['prior_gap_before']:.3f} → {s['prior_gap_after']:.3f}, "
                  f"{1 - s['agreement']:.0%} of the predictions changed")
