"""gatetrace.demo: ``gatetrace demo``, the embedded demo.

A gateway and a few traced demo services on 127.0.0.1, a policy applied
through the standalone reconciler, bounded traffic, and a terminal report.
The services double as the example of embedding :mod:`gatetrace.runtime` in
an aiohttp service (:mod:`.instrument`). Top layer: may import everything.
"""
