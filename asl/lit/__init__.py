"""Where Lightning meets data and models: the LightningModule, the LightningDataModule, the
curriculum callback, and what makes a run exactly resumable."""
