"""Reports: the controller's event log (source of truth) rendered into JSON, Markdown and
pytest-html extras, with one redactor applied to everything that leaves the process."""
