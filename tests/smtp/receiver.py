"""SMTP receiver for Garonne's tests, built on aiosmtpd.

Stores every message it accepts as a JSON file in --dir (written to a temporary name
and renamed, so a reader never sees half a file), prints READY once it accepts
connections, and runs until it is killed or its standard input closes.
"""

import argparse
import json
import os
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Store:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated),
        }
        temporary = os.path.join(self.directory, f".{self.count}.tmp")
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(record, file)
        os.rename(temporary, os.path.join(self.directory, f"{self.count}.json"))
        return "250 OK"


def authenticator(username, password):
    def check(server, session, envelope, mechanism, auth_data):
        if (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == username.encode()
            and auth_data.password == password.encode()
        ):
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    return check


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--cert", help="offer STARTTLS with this certificate")
    parser.add_argument("--key")
    parser.add_argument("--user")
    parser.add_argument("--password")
    arguments = parser.parse_args()

    options = {}
    if arguments.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(arguments.cert, arguments.key)
        options.update(tls_context=context, require_starttls=True)
    if arguments.user:
        options.update(
            authenticator=authenticator(arguments.user, arguments.password),
            auth_required=True,
            auth_require_tls=bool(arguments.cert),
        )
    controller = Controller(
        Store(arguments.dir), hostname="127.0.0.1", port=arguments.port, **options
    )
    controller.start()
    print("READY", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
