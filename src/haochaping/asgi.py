"""The ASGI entry point for uvicorn: settings from the environment."""

from haochaping.app import create_app

app = create_app()
