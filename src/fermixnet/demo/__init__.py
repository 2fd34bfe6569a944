"""The main job on the embedded data: `fermixnet demo` (the logic is in `fermixnet.demo.run`)."""

from fermixnet.demo.run import DemoResult, DemoSettings, format_table, make_data, recipe, run_demo

__all__ = ["DemoResult", "DemoSettings", "format_table", "make_data", "recipe", "run_demo"]
