"""WSGI entry point: `gunicorn wsgi:app`, and `flask --app wsgi ...` for the CLI."""
from videoflix import create_app

app = create_app()
