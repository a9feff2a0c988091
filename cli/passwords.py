"""Passwords on the command line's terms: never as an argument (it would show in ``ps`` and in shell
history). A new user's password is prompted for twice on a terminal, or read as one line from stdin; a
client's password comes from ``--password-file``, ``$LOGQ_PASSWORD`` or a prompt."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

PASSWORD_ENV = "LOGQ_PASSWORD"


def new_password(user: str) -> str:
    """The password to give ``user``: asked twice on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        password: str = click.prompt(
            f"Password for {user}", hide_input=True, confirmation_prompt=True, err=True
        )
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise click.ClickException("empty password: give one at the prompt or as a line on stdin")
    return password


def client_password(user: str, password_file: Path | None) -> str:
    """How a client command learns the password of ``--user``: the file, then $LOGQ_PASSWORD, then a
    prompt (on a terminal only)."""
    if password_file is not None:
        try:
            text = password_file.read_text().splitlines()
        except OSError as exc:
            raise click.ClickException(
                f"cannot read --password-file {password_file}: {exc.strerror}"
            ) from None
        if not text or not text[0]:
            raise click.ClickException(f"--password-file {password_file} is empty")
        return text[0]
    password = os.environ.get(PASSWORD_ENV)
    if password:
        return password
    if sys.stdin.isatty():
        answer: str = click.prompt(f"Password for {user}", hide_input=True, err=True)
        return answer
    raise click.ClickException(
        f"--user {user} needs a password: --password-file FILE, ${PASSWORD_ENV}, or a terminal to ask on"
    )
