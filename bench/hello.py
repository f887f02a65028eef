"""The baseline: a bare Flask hello-world served under the same gunicorn settings as the shop."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    """The cheapest possible Flask response."""
    return "Hello, World!"
