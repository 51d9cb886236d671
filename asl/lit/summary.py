"""The layer table printed when training starts: the network's layers, not the module's metrics.

Lightning's default summary (``RichModelSummary`` when ``rich`` is installed) lists every child of
the LightningModule, so the nine torchmetrics objects appear as layers with 0 parameters, and
prints ``Total FLOPs: 0`` when it has no example input to count them with. This one lists the
network to ``max_depth`` (``net.stages.0``, ..., ``net.head``), the FLOPs of one input
(:attr:`asl.lit.module.ASLClassifier.example_input_array`), and leaves the FLOPs out where they
could not be counted (a compiled model).
"""

from __future__ import annotations

import logging
from typing import Any

from pytorch_lightning.callbacks import ModelSummary
from pytorch_lightning.utilities.model_summary.model_summary import _format_summary_table
from torchmetrics import Metric

log = logging.getLogger(__name__)


class NetworkSummary(ModelSummary):
    """:class:`pytorch_lightning.callbacks.ModelSummary` without metric rows, and without FLOPs it could not count."""

    def _summary(self, trainer, pl_module):
        summary = super()._summary(trainer, pl_module)
        layers = summary._layer_summary
        for name in [n for n, layer in layers.items() if isinstance(layer._module, Metric)]:
            del layers[name]
        return summary

    @staticmethod
    def summarize(summary_data: list[tuple[str, list[str]]], total_parameters: int, trainable_parameters: int,
                  model_size: float, total_training_modes: dict[str, int], total_flops: int, **summarize_kwargs: Any) -> None:
        if not total_flops:
            summary_data = [(name, column) for name, column in summary_data if name != "FLOPs"]
        table = _format_summary_table(total_parameters, trainable_parameters, model_size, total_training_modes,
                                      total_flops, *summary_data)
        if total_flops:
            table = table.replace("Total Flops", "FLOPs per image")
        else:
            table = table.rsplit("\n", 1)[0]  # the "0  Total Flops" line
        log.info("\n%s", table)
