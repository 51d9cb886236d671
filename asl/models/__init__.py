"""Backbones and heads. Plain ``nn.Module`` code: nothing here knows of Lightning or Hydra."""

from asl.models.registry import Classifier, available_models, create_model

__all__ = ["Classifier", "available_models", "create_model"]
