"""Backbones and heads. Plain ``nn.Module`` code: nothing here knows of Lightning or Hydra.

Importing a model module registers its names (``@register_model``), as in timm; importing this
package imports them all.
"""

from asl.models import efficientnet_lite, fusion, landmark_mlp, small_cnn, torchvision  # noqa: F401  (register)
from asl.models.batchnorm import PRETRAINED_BN, recalibrate_batchnorm
from asl.models.classifier import Classifier
from asl.models.protocol import ASLModel
from asl.models.registry import architecture, available_models, create_model, register_model

__all__ = ["PRETRAINED_BN", "ASLModel", "Classifier", "architecture", "available_models", "create_model", "recalibrate_batchnorm",
           "register_model"]
