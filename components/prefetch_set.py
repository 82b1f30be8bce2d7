"""The PrefetchSet component: one per declared set, one dynamic resource per destination."""

from __future__ import annotations

from typing import Any, Optional

import pulumi
from pulumi.dynamic import Resource

from .declarations import PrefetchSetDeclaration
from .provider import PrefetchProvider
from .records import OUTPUTS_VERSION, SetInputs, audit_entry

COMPUTED_OUTPUTS = ("observed", "submitted", "summary", "drifted", "drifted_total")


class Destination(Resource, module="cdnprefetch", name="Destination"):
    """A prefetch set on one CDN destination. Type ``pulumi-python:dynamic/cdnprefetch:Destination``."""

    observed: pulumi.Output[dict]
    """Per target with a task: [state, task id, time, reason] of its latest task, plus for an origin
    target the ETag that task was submitted for."""
    submitted: pulumi.Output[list]
    """Every task this resource submitted: task id, time, number of targets."""
    summary: pulumi.Output[dict]
    """Counts by status, warm ratio, in-sync flag, verification time, digest of the targets."""
    drifted: pulumi.Output[list]
    """The first 100 targets that are not warm, with status in plain words, reason, task id and time."""
    drifted_total: pulumi.Output[int]

    def __init__(self, name: str, inputs: SetInputs, opts: Optional[pulumi.ResourceOptions] = None):
        props: dict[str, Any] = {**inputs.to_props(), **{key: None for key in COMPUTED_OUTPUTS}}
        super().__init__(PrefetchProvider(), name, props, opts)


class PrefetchSet(pulumi.ComponentResource):
    """A declared prefetch set; ``audit`` is its entry in the stack's audit record."""

    audit: pulumi.Output[dict]

    def __init__(self, declaration: PrefetchSetDeclaration, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("cdnprefetch:index:PrefetchSet", declaration.name, None, opts)
        self.destinations = [
            Destination(f"{declaration.name}-{dest.label}", SetInputs.from_declaration(declaration, dest),
                        pulumi.ResourceOptions(parent=self))
            for dest in declaration.destinations
        ]
        entries = [
            pulumi.Output.all(**{key: getattr(resource, key) for key in ("destination", *COMPUTED_OUTPUTS)})
            .apply(audit_entry)
            for resource in self.destinations
        ]
        self.audit = pulumi.Output.all(*entries).apply(lambda done: {
            "source": declaration.source,
            "description": declaration.description,
            "targets": len(declaration.targets),
            "destinations": list(done),
        })
        self.register_outputs({"audit": self.audit})


def stack_record(sets: dict[str, pulumi.Output[dict]]) -> pulumi.Output[dict]:
    """The ``prefetch`` stack output: versioned, one entry per set."""
    return pulumi.Output.all(**sets).apply(lambda by_name: {"version": OUTPUTS_VERSION, "sets": dict(by_name)})
