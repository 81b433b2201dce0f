"""A small OpenID Connect provider on loopback, for the browser tests of real sign-in.

It speaks the authorization-code flow the way Streamlit's ``st.login`` (Authlib) expects: discovery
document, an authorization page where the person types their e-mail address, a token endpoint that
checks the client's secret and the one-time code and returns an RS256-signed ID token (issuer,
audience, nonce, issue and expiry times, e-mail), the signing keys, user info, and an end-session
endpoint. Nothing is remembered beyond the codes it issued; it runs in a thread until closed.
"""

from __future__ import annotations

import base64
import html
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

from joserfc import jwt
from joserfc.jwk import RSAKey

TOKEN_LIFETIME_S = 300


class OpenIDProvider:
    """``with OpenIDProvider(client_id, client_secret, redirect_uri) as op:`` serves at ``op.issuer``."""

    def __init__(self, client_id: str, client_secret: str, redirect_uri: str) -> None:
        self.client_id, self.client_secret, self.redirect_uri = client_id, client_secret, redirect_uri
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"})
        self.codes: dict[str, dict[str, str]] = {}
        self.tokens: dict[str, str] = {}  # access token -> e-mail
        self.signed_in: list[str] = []  # e-mails in the order they signed in
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "OpenIDProvider":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def metadata(self) -> dict[str, object]:
        return {
            "issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
            "userinfo_endpoint": f"{self.issuer}/userinfo", "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "claims_supported": ["sub", "email", "email_verified", "name"],
        }

    def id_token(self, email: str, nonce: str) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": email, "aud": self.client_id, "iat": now, "exp": now + TOKEN_LIFETIME_S,
                  "nonce": nonce, "email": email, "email_verified": True, "name": email.split("@")[0].title()}
        return jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self.key)

    def _client_ok(self, headers, form: dict[str, str]) -> bool:
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            client, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        else:
            client, secret = form.get("client_id", ""), form.get("client_secret", "")
        return client == self.client_id and secrets.compare_digest(secret, self.client_secret)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                return None

            def _send(self, status: int, body: bytes = b"", kind: str = "application/json",
                      location: str | None = None) -> None:
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _json(self, value: object, status: int = 200) -> None:
                self._send(status, json.dumps(value).encode())

            def _form(self) -> dict[str, str]:
                length = int(self.headers.get("Content-Length") or 0)
                return {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self._json(provider.metadata())
                elif url.path == "/jwks":
                    self._json({"keys": [provider.key.as_dict(private=False)]})
                elif url.path == "/authorize":
                    if query.get("client_id") != provider.client_id or query.get("redirect_uri") != provider.redirect_uri:
                        self._send(400, b"unknown client or redirect_uri", "text/plain")
                        return
                    hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                                     for k, v in query.items() if k in ("state", "nonce", "redirect_uri"))
                    page = (f"<html><body><h1>Test identity provider</h1><form method='post' action='/authorize'>"
                            f"{hidden}<label>E-mail <input name='email' id='email'></label>"
                            f"<button type='submit' id='submit'>Sign in</button></form></body></html>")
                    self._send(200, page.encode(), "text/html")
                elif url.path == "/userinfo":
                    email = provider.tokens.get(self.headers.get("Authorization", "").removeprefix("Bearer "))
                    self._json({"sub": email, "email": email} if email else {"error": "invalid_token"},
                               200 if email else 401)
                elif url.path == "/logout":
                    self._send(302, location=query.get("post_logout_redirect_uri") or "/")
                else:
                    self._send(404, b"not found", "text/plain")

            def do_POST(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                form = self._form()
                if url.path == "/authorize":
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = {"email": form.get("email", ""), "nonce": form.get("nonce", "")}
                    target = form.get("redirect_uri") or provider.redirect_uri
                    self._send(302, location=f"{target}?{urlencode({'code': code, 'state': form.get('state', '')})}")
                elif url.path == "/token":
                    grant = provider.codes.pop(form.get("code", ""), None)  # a code works once
                    if not provider._client_ok(self.headers, form) or grant is None:
                        self._json({"error": "invalid_grant"}, 400)
                        return
                    access = secrets.token_urlsafe(16)
                    provider.tokens[access] = grant["email"]
                    provider.signed_in.append(grant["email"])
                    self._json({"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_S,
                                "id_token": provider.id_token(grant["email"], grant["nonce"])})
                else:
                    self._send(404, b"not found", "text/plain")

        return Handler
