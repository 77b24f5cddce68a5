"""Samplers: small objects with one ``should_sample`` method (see :mod:`.base`)."""
