"""WSGI entry point: `gunicorn wsgi:app`."""

from shopapp import create_app

app = create_app()
