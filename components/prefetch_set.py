"""The typed API's import path before the layers (``from components.prefetch_set import PrefetchSet``),
kept so that existing programs keep working; new code imports from ``components`` itself."""

from .engine.args import DestinationArgs, PrefetchSetArgs
from .engine.prefetch_set import PrefetchSet, ShardResource, stack_output
from .engine.spec import PrefetchSetError

#: Old names: the dynamic resource class (its registered type name is unchanged), the stack output.
Destination = ShardResource
stack_record = stack_output

__all__ = ["Destination", "DestinationArgs", "PrefetchSet", "PrefetchSetArgs", "PrefetchSetError", "ShardResource",
           "stack_output", "stack_record"]
