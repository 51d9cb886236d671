"""Every shipped logger to the end of a tiny run: the final hyper-parameters and metrics reach each of them."""

from __future__ import annotations

import csv
import importlib.util
import json

import pytest
import yaml

from .conftest import TINY_TRAIN, train_in_process

pytestmark = pytest.mark.slow

MLFLOW = importlib.util.find_spec("mlflow") is not None


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One run with logger=[csv,mlflow] (csv alone without the mlflow extra); label_smoothing=0 is the int 0 in the
    config and 0.0 in the module, a value MLflow would refuse to see change."""
    run = tmp_path_factory.mktemp("loggers") / "run"
    loggers = "[csv,mlflow]" if MLFLOW else "[csv]"
    train_in_process(run, [*TINY_TRAIN, f"logger={loggers}", "label_smoothing=0"])
    return run, json.loads((run / "metrics.json").read_text())


def test_csv_logger_gets_the_hyperparameters_and_final_metrics(run):
    path, metrics = run
    rows = list(csv.DictReader(open(path / "csv" / "metrics.csv")))
    final = next(r for r in rows if r.get("val/acc_best"))
    assert float(final["val/acc_best"]) == pytest.approx(metrics["best_val_acc"])
    assert float(final["test/acc"]) == pytest.approx(metrics["test/acc"])
    assert sum(bool(r.get("val/acc")) for r in rows) == 2  # the curve too: two epochs
    assert yaml.safe_load((path / "csv" / "hparams.yaml").read_text())["model.name"] == "small_cnn"


@pytest.mark.skipif(not MLFLOW, reason="the mlflow extra is not installed")
def test_mlflow_logger_writes_a_store_in_the_run_folder(run):
    from mlflow.tracking import MlflowClient

    path, metrics = run
    client = MlflowClient(tracking_uri=f"sqlite:///{path}/mlflow.db")
    (found,) = client.search_runs([client.get_experiment_by_name("asl").experiment_id])
    assert found.data.params["model.name"] == "small_cnn" and found.data.params["seed"] == "0"
    assert found.data.metrics["val/acc_best"] == pytest.approx(metrics["best_val_acc"])
    assert found.data.metrics["audit/leak_rate_test"] == pytest.approx(metrics["leak_rate"]["test"])
    assert found.info.status == "FINISHED"
