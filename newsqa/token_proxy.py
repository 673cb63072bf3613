"""A token check in front of a Chroma server. Chroma 1.x's server has no auth of its own, so nginx (Debian's
package) stands before it: requests without the token get 401 in Chroma's own error shape (its client raises
AuthorizationError, which newsqa explains at start-up), the rest pass to the server, over TLS when given a
certificate. deploy/local.py and the tests run it; `python -m newsqa.token_proxy` prints the configuration to
adapt for a server of your own (README, Deployment)."""

import argparse
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from newsqa.processes import START_TIMEOUT_S, NotUp, Running, debian_command, port_open, stop, wait_until_up

# Written into nginx's configuration as a quoted string: no quotes, escapes, `$` or a leading `~` (a regex)
_TOKEN = re.compile(r"[A-Za-z0-9._+/=-]{16,256}")
_REFUSAL = '{"error":"AuthorizationError","message":"a valid token is required"}'


@dataclass(frozen=True)
class ProxyConfig:
    upstream_port: int  # the Chroma server, on 127.0.0.1
    port: int  # where clients connect
    token: str
    header: str = "Authorization"  # NEWSQA_CHROMA_TOKEN_HEADER
    certificate: Path | None = None  # with its key: TLS
    key: Path | None = None
    host: str = "127.0.0.1"

    def render(self, folder: Path) -> str:
        """nginx.conf; `folder` holds its pid, log and temporary files."""
        if not _TOKEN.fullmatch(self.token):
            raise ValueError("the token must be 16-256 characters of A-Z a-z 0-9 . _ + / = - "
                             "(python -c 'import secrets; print(secrets.token_urlsafe(32))')")
        expected = f"Bearer {self.token}" if self.header.lower() == "authorization" else self.token
        variable = "$http_" + self.header.lower().replace("-", "_")
        tls = (f"ssl;\n        ssl_certificate {self.certificate};\n        ssl_certificate_key {self.key};"
               if self.certificate else ";")
        temp = "\n    ".join(f"{kind}_temp_path {folder}/{kind};" for kind in
                             ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        return f"""daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    map_hash_bucket_size 512;  # holds the longest expected value
    {temp}
    map {variable} $newsqa_token_ok {{ default 0; "{expected}" 1; }}
    upstream chroma {{ server 127.0.0.1:{self.upstream_port}; keepalive 16; }}
    server {{
        listen {self.host}:{self.port} {tls}
        client_max_body_size 0;  # a batch of upserts is large
        location / {{
            default_type application/json;
            if ($newsqa_token_ok = 0) {{
                add_header WWW-Authenticate Bearer always;
                return 401 '{_REFUSAL}';
            }}
            proxy_pass http://chroma;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 300s;
            # streamed both ways: no temporary files, which nginx's unprivileged workers may not be able to write
            proxy_request_buffering off;
            proxy_buffering off;
        }}
    }}
}}
"""


@contextmanager
def token_proxy(config: ProxyConfig, folder: Path) -> Iterator[Running]:
    """nginx with `config` until the block ends; yields it once its port accepts connections."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(config.render(folder), encoding="utf-8")
    conf.chmod(0o600)  # it holds the token
    process = subprocess.Popen([debian_command("nginx", "nginx"), "-p", str(folder), "-c", str(conf),
                                "-e", str(folder / "error.log")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        try:
            wait_until_up(partial(port_open, config.port), process, START_TIMEOUT_S,
                          what=f"the token proxy (nginx) on port {config.port}")
        except NotUp as exc:
            log = folder / "error.log"
            raise NotUp(f"{exc}: {log.read_text().strip() if log.exists() else 'no log'}") from None
        yield Running(config.port, process)
    finally:
        stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description="Print an nginx configuration that checks a token before Chroma.")
    parser.add_argument("--chroma-port", type=int, required=True, help="the Chroma server's port on 127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="where clients connect (NEWSQA_CHROMA_PORT)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on: loopback or a private one")
    parser.add_argument("--token", required=True, help="NEWSQA_CHROMA_TOKEN")
    parser.add_argument("--header", default="Authorization", help="NEWSQA_CHROMA_TOKEN_HEADER")
    parser.add_argument("--certificate", type=Path, help="PEM certificate for TLS (with --key)")
    parser.add_argument("--key", type=Path)
    parser.add_argument("--folder", type=Path, default=Path("/var/lib/newsqa-proxy"), help="pid, log, temp files")
    args = parser.parse_args()
    config = ProxyConfig(args.chroma_port, args.port, args.token, args.header, args.certificate,
                         args.key, args.host)
    print(config.render(args.folder), end="")


if __name__ == "__main__":
    main()
