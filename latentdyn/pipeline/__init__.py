"""Experiments: stage configs, the plan of an experiment file, the runner, run folders and the report."""
