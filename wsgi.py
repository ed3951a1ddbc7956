"""The WSGI app (`gunicorn wsgi:app`) and the `smsbot` command line (`flask --app wsgi` works too).

The app is created on first use, so `smsbot --version` and `--help` answer even where the configuration
is refused (production without SMSBOT_SECRET_KEY); everything else says why in one line and exits 1.
"""

from functools import cache
from importlib.metadata import version

import click
from flask import Flask
from flask.cli import FlaskGroup, routes_command, shell_command

from bot import create_app
from bot.environment import ConfigError


@cache
def load_app() -> Flask:
    try:
        return create_app()
    except ConfigError as exc:  # one clear line on stderr and exit status 1, for gunicorn and the CLI alike
        raise SystemExit(f"smsbot: {exc}") from None


def __getattr__(name: str) -> Flask:
    """`wsgi.app`, created when gunicorn or Flask first asks for it."""
    if name == "app":
        return load_app()
    raise AttributeError(name)


cli = FlaskGroup(
    create_app=load_app,
    add_version_option=False,
    add_default_commands=False,  # `smsbot run` is ours: web and worker together
    help="smsbot: inbound SMS keyword bot and outbound pipeline.",
)
cli.params.append(  # smsbot's own version (FlaskGroup's --version prints Flask's and Python's)
    click.Option(
        ["--version"],
        is_flag=True,
        expose_value=False,
        is_eager=True,
        help="Show smsbot's version and exit.",
        callback=lambda ctx, _param, value: value and (click.echo(f"smsbot {version('smsbot')}"), ctx.exit()),
    )
)
cli.add_command(shell_command)
cli.add_command(routes_command)

if __name__ == "__main__":
    cli()
