"""The command-line tools beside the plugin (`sidecar-load`, `sidecar-capacity`).

They sit on the top floor with plugin.py: entry points that read settings, target files
and the libraries below, never the reverse. (`sidecar-stack` is the reference stack's
own entry point, `stack/cli.py`: the stack imports nothing of the suite.)
"""
