"""The drift report without the Pulumi CLI: ``python -m components.report``."""
