"""The main job on the embedded data (`fermixnet demo`, in `fermixnet.demo.run`) and the same
comparison on any data (`fermixnet compare`, in `fermixnet.demo.compare`)."""

from fermixnet.demo.compare import CompareSettings, run_compare
from fermixnet.demo.run import (
    DemoResult,
    DemoSettings,
    format_table,
    make_data,
    run_demo,
    synthetic_template,
)

__all__ = ["CompareSettings", "DemoResult", "DemoSettings", "format_table", "make_data",
           "run_compare", "run_demo", "synthetic_template"]
