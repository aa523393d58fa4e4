"""The physician's workbench: a FastAPI app with a JSON API (`/api/...`) and server-rendered pages (Jinja2 + htmx).

Thin by design: routes parse the request, call `zhujian.storage.services` and shape the answer; domain errors become
HTTP answers in `zhujian.web.errors` only. Build the app with `zhujian.web.app.create_app(settings)`; run it with
`zhujian serve` (`zhujian.web.cli.serve_command`).
"""
