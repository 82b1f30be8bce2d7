"""The ``cdn-prefetch`` command: validate, plan, apply, report and the sandbox, without the Pulumi CLI.

The same core as the dynamic provider: declarations (``declare``), origin listings, shards, the
adapters and ``ShardSync`` (``resource/converge.py``) with its rails and consent. Only the command
line, the configuration read, the local state file and the words on the terminal live here.
"""
