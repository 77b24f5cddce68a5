"""Reporters: the batching engine, encoders and transports for each backend."""
