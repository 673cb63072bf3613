from newsqa.cli import app

app()
