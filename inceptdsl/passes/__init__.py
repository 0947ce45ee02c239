"""Passes over the IR, one module each: ``lint``, ``shapes``, ``cost``, and ``inference``
(graph + weights rewrites for deployment: BN folding, sibling conv fusion)."""
