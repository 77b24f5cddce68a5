"""Real peer servers for the gatetrace e2e suite: built by the scripts beside this file,
started and stopped on 127.0.0.1 by `peers.servers` (not part of the gatetrace package)."""
