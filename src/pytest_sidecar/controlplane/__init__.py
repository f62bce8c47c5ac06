"""The control plane (CONTRACT §9): one process that launches suite runs,
streams their progress, keeps their history in SQLite and serves a static web UI.

Modules, bottom to top: settings (what it is configured with), auth (tokens and
scopes), store (the SQLite history), history (flakiness, trends, the quality gate),
launch (what a run request may ask for, and the local launcher), kubernetes (the Job
launcher), events (the plugin's event log into viewer events), runs (the queue and the
life of a run), readonly (the read-only §9 routes over the project's libraries), app (the
Starlette routes and the static UI). Imports no pytest.
"""
