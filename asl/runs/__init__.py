"""One module per command: training, evaluation, prediction, explain, export, audit, compare,
reproduce. The run folder's layout has one owner: :mod:`asl.runs.run_folder`."""
