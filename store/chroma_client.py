"""The Chroma client every newsqa process opens (API workers, ingest, check, the eval's server mode): the
embedded store under the data dir, or a Chroma server, reached with the token and TLS settings
(NEWSQA_CHROMA_TOKEN, NEWSQA_CHROMA_TOKEN_HEADER, NEWSQA_CHROMA_TLS, NEWSQA_CHROMA_CA_FILE)."""

import ssl

import chromadb
from chromadb.api.shared_system_client import SharedSystemClient
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import AuthorizationError, ChromaAuthError

from newsqa.settings import Settings


def chroma_client(settings: Settings, fresh: bool = False) -> chromadb.ClientAPI:
    """`fresh`: read the embedded store as it is now. Chroma keeps one client system per path and process, and
    that system never sees vectors another process wrote after it loaded them; handles already given out keep
    working on the old one."""
    if not settings.chroma_host:
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        if fresh:
            SharedSystemClient._identifier_to_system.pop(str(settings.chroma_dir), None)
        return chromadb.PersistentClient(path=str(settings.chroma_dir),
                                         settings=ChromaSettings(anonymized_telemetry=False))
    ca_file = str(settings.chroma_ca_file) if settings.chroma_ca_file else None
    return chromadb.HttpClient(
        host=settings.chroma_host, port=settings.chroma_port, ssl=settings.chroma_tls, headers=token_headers(settings),
        settings=ChromaSettings(anonymized_telemetry=False, chroma_server_ssl_verify=ca_file))


def token_headers(settings: Settings) -> dict[str, str]:
    """The token as Chroma's own token auth sends it: `Authorization: Bearer TOKEN`, or the bare token in
    another header."""
    if settings.chroma_token is None:
        return {}
    token = settings.chroma_token.get_secret_value()
    header = settings.chroma_token_header
    return {header: f"Bearer {token}" if header.lower() == "authorization" else token}


def server_refusal(exc: BaseException, settings: Settings) -> str | None:
    """What a Chroma server's refusal means to the operator, with the setting to change; None for other
    failures."""
    where = f"the Chroma server at {settings.chroma_host}:{settings.chroma_port}"
    if isinstance(exc, AuthorizationError | ChromaAuthError):
        if settings.chroma_token is None:
            return f"{where} requires a token: set NEWSQA_CHROMA_TOKEN (and NEWSQA_CHROMA_TOKEN_HEADER if it " \
                   "is not read from Authorization)"
        return f"{where} refused the token in {settings.chroma_token_header}: check NEWSQA_CHROMA_TOKEN and " \
               "NEWSQA_CHROMA_TOKEN_HEADER"
    chain = _chain(exc)
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain):
        return f"{where}'s TLS certificate could not be verified: set NEWSQA_CHROMA_CA_FILE to the CA that signed it"
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return f"{where} does not speak TLS: set NEWSQA_CHROMA_TLS=false, or put TLS in front of it"
    if any("plain HTTP request was sent to HTTPS port" in str(e) for e in chain):  # nginx's words
        return f"{where} speaks TLS: set NEWSQA_CHROMA_TLS=true"
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and those it was raised from or during (Chroma wraps httpx's, which wrap ssl's)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
