"""The arena voting web page (FastAPI + Jinja2): :func:`llmlab.web.app.create_app`."""
