"""Signing in to the board from a test client: the login form's CSRF, then the board's."""

from __future__ import annotations

import re
from typing import Any

LOGIN_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def sign_in(client: Any, name: str, password: str) -> str:
    """Sign ``client`` in as ``name``; returns the board's CSRF token for the forms that follow."""
    token = LOGIN_CSRF.search(client.get("/board/login").text)
    assert token
    signed_in = client.post("/board/login", follow_redirects=False,
                            data={"name": name, "password": password, "csrf": token.group(1)})
    assert signed_in.status_code == 303, signed_in.text[:500]
    found = CSRF.search(client.get("/board").text)
    assert found
    return found.group(1)
