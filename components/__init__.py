"""cdn-prefetch: keep declared CDN prefetch sets warm, and honest about it.

Layers, each importing only from the ones before it (tests/test_layout.py holds this):

    model  <-  declare  <-  plan  <-  clouds  <-  resource  <-  engine  <-  report, program

``model`` holds values (and the registry of clouds), ``declare`` what the user wrote, ``plan`` pure
decisions, ``clouds`` the I/O, ``resource`` one shard's inputs, outputs, audit record and how it
converges, ``engine`` the Pulumi side. ``provider.py`` belongs to ``engine`` but stays at the top:
its import path (``components.provider.PrefetchProvider``) is pickled into every stack's state.
"""

# The typed API, importable as ``from components import PrefetchSet, PrefetchSetArgs``. Loaded on first
# use (PEP 562): the provider host imports this package for ``components.provider`` alone, and must not
# pay for the component's imports on every engine command.
_PUBLIC = {
    "PrefetchSet": ".engine.prefetch_set",
    "ShardResource": ".engine.prefetch_set",
    "stack_output": ".engine.prefetch_set",
    "PrefetchSetArgs": ".engine.args",
    "DestinationArgs": ".engine.args",
    "PrefetchSetError": ".engine.spec",
    "zone_id": ".declare.references",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> object:
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name], __name__), name)  # relative: any install name
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
