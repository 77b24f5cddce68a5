"""gatetrace.demo: ``gatetrace demo``, the embedded demo.

A gateway and a few traced demo services on 127.0.0.1, a policy applied
through the standalone reconciler, bounded traffic, and a terminal report.
The services double as the example of making an aiohttp service traced and
operator-managed with the embedding kit (:mod:`gatetrace.embed`). Top layer: may import
everything.
"""
