"""Reports of training and evaluation runs: markdown tables, PNG plots, CSV of every number."""

from fermixnet.report.writer import RunRecord, load_run, write_report

__all__ = ["RunRecord", "load_run", "write_report"]
