"""cdn-prefetch: keep declared CDN prefetch sets warm, and honest about it.

Layers, each importing only from the ones before it (tests/test_layout.py holds this):

    model  <-  declare  <-  plan  <-  clouds  <-  resource  <-  engine  <-  report, program

``model`` holds values (and the registry of clouds), ``declare`` what the user wrote, ``plan`` pure
decisions, ``clouds`` the I/O, ``resource`` one shard's inputs, outputs, audit record and how it
converges, ``engine`` the Pulumi side. ``provider.py`` belongs to ``engine`` but stays at the top:
its import path (``components.provider.PrefetchProvider``) is pickled into every stack's state.
"""
