"""Experiments: stage configs, the plan of an experiment file, the runner, run folders and the report.

``from latentdyn.pipeline import run_experiment, load_experiment, write_report``.

Its names are imported on first use (``latentdyn.core.lazy``): ``import latentdyn.pipeline`` loads no torch.
"""

from latentdyn.core.lazy import lazy_exports

_EXPORTS = {
    "latentdyn.pipeline.plan": ["Experiment", "Stage", "find_experiment", "load_experiment"],
    "latentdyn.pipeline.report.page": ["write_report"],
    "latentdyn.pipeline.runfolder": ["read_record", "run_summary"],
    "latentdyn.pipeline.runner": ["run_experiment"],
    "latentdyn.pipeline.stages": ["KINDS", "CompareMapsConfig", "ExperimentInfo", "ReportConfig", "SweepSummaryConfig"],
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "CompareMapsConfig", "Experiment", "ExperimentInfo", "KINDS", "ReportConfig", "Stage", "SweepSummaryConfig",
    "find_experiment", "load_experiment", "read_record", "run_experiment", "run_summary", "write_report",
]
