"""Shim: the cdn-prefetch ``components`` package of this repository, importable from this folder.

Pulumi runs this example's program *and* starts the dynamic provider host (``python -m
pulumi.dynamic``) with this folder as the working directory, and both import ``components`` from
there. A ``sys.path`` insertion in ``__main__.py`` would fix the program only: the host, which
un-pickles the provider on every call, would still fail with ``No module named 'components'``.

This shim's ``__path__`` is the repository's ``components/``, so ``components.provider`` here is
the repository's module under its usual name: the provider is still pickled by reference
(``components.provider.PrefetchProvider``, the class path the root project uses), and refresh,
up and destroy always run the repository's current code.
"""

from pathlib import Path

__path__ = [str(Path(__file__).resolve().parents[3] / "components")]
