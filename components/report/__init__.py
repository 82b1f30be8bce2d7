"""The drift report without the Pulumi CLI: ``python -m components.report``.

The names the report's API had before it was split are importable from here (loaded on first use).
"""

_PUBLIC = {
    "main": ".cli", "observe": ".cli",
    "load_stack_config": ".stack_config", "StackConfig": ".stack_config",
    "build_report": ".model", "Report": ".model",
    "DestinationReport": ".model", "DestinationReading": ".model",
    "DriftRow": ".model", "EXIT_WARM": ".model",
    "EXIT_DRIFT": ".model", "EXIT_ERROR": ".model",
    "render_table": ".renderers", "render_markdown": ".renderers",
    "render_json": ".renderers", "report_dict": ".renderers",
}
#: Old names of renamed types.
_RENAMED = {"Observed": "DestinationReading", "DriftedTarget": "DriftRow"}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> object:
    target = _RENAMED.get(name, name)
    if target in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[target], __name__), target)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
