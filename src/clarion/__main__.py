from clarion.cli import app

app()
