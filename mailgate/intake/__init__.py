"""Intake adapters: every way a raw message reaches the spool."""
