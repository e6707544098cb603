"""An OAuth2 token endpoint that authenticates clients by `private_key_jwt`
(RFC 7523), verifying each client assertion with PyJWT: an implementation
independent of the gateway's.

Started by `tests/tests/delivery_auth.rs`. Makes an RSA and a P-256 key,
listens on 127.0.0.1 (a free port) and prints one JSON line to stdout:
{"port", "rsa", "ec"} (the PEM private keys the client is to use). Then:

- POST /token: client_credentials with client_assertion_type jwt-bearer and
  a client_assertion signed RS256 (by the RSA key) or ES256 (by the EC key),
  iss = sub = the client id `jwt-client`, aud = this endpoint's URL, exp at
  most 5 minutes after iat, a jti never seen before. Issues
  `jwt-tok-N`; anything else is a 400/401 with an RFC 6749 error.
- GET /log: what was accepted and refused, as JSON.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

CLIENT_ID = "jwt-client"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC = {"RS256": RSA_KEY.public_key(), "ES256": EC_KEY.public_key()}

LOCK = threading.Lock()
SEEN_JTI = set()
LOG = {"accepted": [], "refused": []}


def pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def refuse(self, status, error, why):
        with LOCK:
            LOG["refused"].append(why)
        self.answer(status, {"error": error, "error_description": why})

    def do_GET(self):
        with LOCK:
            self.answer(200, LOG)

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        form = dict(parse_qsl(self.rfile.read(length).decode()))
        if form.get("grant_type") != "client_credentials":
            return self.refuse(400, "unsupported_grant_type", "grant_type")
        if "client_secret" in form or self.headers.get("authorization"):
            return self.refuse(400, "invalid_request", "a secret was sent")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return self.refuse(401, "invalid_client", "client_assertion_type")
        assertion = form.get("client_assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
            alg = header.get("alg")
            if alg not in PUBLIC:
                return self.refuse(401, "invalid_client", f"alg {alg}")
            claims = jwt.decode(
                assertion,
                PUBLIC[alg],
                algorithms=[alg],
                audience=f"http://127.0.0.1:{PORT}/token",
                issuer=CLIENT_ID,
                options={"require": ["exp", "iat", "jti", "iss", "sub", "aud"]},
            )
        except jwt.PyJWTError as error:
            return self.refuse(401, "invalid_client", f"{type(error).__name__}: {error}")
        if claims["sub"] != CLIENT_ID or form.get("client_id", CLIENT_ID) != CLIENT_ID:
            return self.refuse(401, "invalid_client", "sub or client_id")
        if claims["exp"] - claims["iat"] > 300:
            return self.refuse(401, "invalid_client", "lives longer than 5 minutes")
        with LOCK:
            if claims["jti"] in SEEN_JTI:
                reused = True
            else:
                reused = False
                SEEN_JTI.add(claims["jti"])
                LOG["accepted"].append(
                    {"alg": alg, "kid": header.get("kid"), "jti": claims["jti"], "assertion": assertion}
                )
                n = len(LOG["accepted"])
        if reused:
            return self.refuse(400, "invalid_grant", "jti reused")
        self.answer(200, {"access_token": f"jwt-tok-{n}", "token_type": "Bearer", "expires_in": 3600})


SERVER = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
PORT = SERVER.server_address[1]
print(json.dumps({"port": PORT, "rsa": pem(RSA_KEY), "ec": pem(EC_KEY)}), flush=True)
try:
    SERVER.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)
