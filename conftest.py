"""Repository-level settings for running pytest-sidecar's suite and self-tests here.

The plugin itself is loaded through its `pytest11` entry point (pip install -e .);
pytester drives the self-tests of the plugin (tests/plugin) and of the suite (tests/suite).
"""

pytest_plugins = ("pytester",)
