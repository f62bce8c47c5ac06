"""The reference Async Sidecar: a real gateway, explainer and fake upstream over loopback.

Imports no pytest. `sidecar-stack serve` runs it; `embedded.EmbeddedStack` starts it as
a subprocess for the plugin.
"""
