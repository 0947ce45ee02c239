"""Passes over the IR, one module each: ``lint``, ``shapes``, ``cost``."""
