"""Run reports: one versioned JSON file per run, written atomically, readable as another run's reference."""

from mu_eval.report.io import load_report, write_report
from mu_eval.report.schema import SCHEMA_VERSION, Report, ReportError, validate_report

__all__ = ["SCHEMA_VERSION", "Report", "ReportError", "load_report", "validate_report", "write_report"]
