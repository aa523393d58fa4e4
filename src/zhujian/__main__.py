"""`python -m zhujian …` is the same as the `zhujian` command."""

from zhujian.cli import app

app(prog_name="zhujian")
