"""The Pulumi side: the PrefetchSet component and its typed arguments, preflight, and stack config
-> provider settings. The dynamic provider itself is ``components/provider.py`` (its import path
is in every stack's state)."""
