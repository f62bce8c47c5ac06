"""Repository-level settings for running pytest-sidecar's suite and self-tests here.

The plugin itself is loaded through its `pytest11` entry point (pip install -e .);
pytester drives the plugin self-tests in tests/plugin.
"""

pytest_plugins = ("pytester",)
