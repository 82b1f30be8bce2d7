"""The drift report without the Pulumi CLI: ``python -m components.report``.

The names the report's API had before it was split are importable from here (loaded on first use).
"""

_PUBLIC = {
    "main": "components.report.cli", "observe": "components.report.cli",
    "load_stack_config": "components.report.stack_config", "StackConfig": "components.report.stack_config",
    "build_report": "components.report.model", "Report": "components.report.model",
    "DestinationReport": "components.report.model", "DestinationReading": "components.report.model",
    "DriftRow": "components.report.model", "EXIT_WARM": "components.report.model",
    "EXIT_DRIFT": "components.report.model", "EXIT_ERROR": "components.report.model",
    "render_table": "components.report.renderers", "render_markdown": "components.report.renderers",
    "render_json": "components.report.renderers", "report_dict": "components.report.renderers",
}
#: Old names of renamed types.
_RENAMED = {"Observed": "DestinationReading", "DriftedTarget": "DriftRow"}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> object:
    target = _RENAMED.get(name, name)
    if target in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[target]), target)
    raise AttributeError(f"module 'components.report' has no attribute {name!r}")
