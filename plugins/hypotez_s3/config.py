"""Where and how to reach the bucket: ``s3://bucket/prefix`` plus settings and AWS variables.

Pure Python (no obstore import), so that a bad URL or option fails fast and is easy to test.

Precedence for each value: the plugin option (argument, ``HYPOTEZ_S3_<KEY>``, ``[plugins.s3]``
in ``hypotez.toml``), then the standard AWS variable, then the default.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import attrs
from hypotez import ConfigError, InputError, Settings
from hypotez.settings import as_bool

# Bucket names as S3 accepts them (3-63 characters; dots allowed for old buckets).
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# Prefix segments: no empty segment, no "." or "..", nothing a key should not hold.
_SEGMENT_RE = re.compile(r"[A-Za-z0-9_.=+-]+")


def shown(url: str | None) -> str | None:
    """``url`` fit for a message or a log: any ``user:password@`` part is replaced by ``***@``."""
    from hypotez.errors import redact

    return None if url is None else redact(url)


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b")``; a bad URL raises :class:`InputError`.

    No message repeats credentials put in the URL.
    """
    if not isinstance(url, str):
        raise InputError(f"Storage URL must be text such as s3://bucket/prefix, not {url!r}.")
    try:
        parts = urlsplit(url)
        has_credentials = parts.username is not None or parts.password is not None
    except ValueError as exc:  # "Invalid IPv6 URL": an unbalanced '[' or ']'
        raise InputError(
            f"Storage URL {shown(url)!r} cannot be parsed ({exc}); use s3://bucket/prefix."
        ) from None
    if has_credentials or "@" in parts.netloc:
        raise InputError(
            "Do not put credentials in the storage URL; use AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or [plugins.s3] options)."
        )
    if parts.scheme != "s3":
        raise InputError(f"Storage URL {url!r} is not an s3:// URL; use s3://bucket/prefix.")
    if parts.query or parts.fragment:
        raise InputError(
            f"Storage URL {url!r} has a query or fragment; put the endpoint, region and "
            "credentials in [plugins.s3] options or AWS_* variables instead."
        )
    bucket = parts.netloc
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        raise InputError(
            f"Storage URL {url!r}: {bucket!r} is not a valid bucket name (3-63 lowercase "
            "letters, digits, '.' or '-'). Use s3://bucket/prefix."
        )
    segments = [s for s in parts.path.split("/") if s != ""]
    for segment in segments:
        if segment in (".", "..") or not _SEGMENT_RE.fullmatch(segment):
            raise InputError(
                f"Storage URL {url!r}: prefix part {segment!r} is not allowed; use letters, "
                "digits and '_', '.', '=', '+', '-' separated by '/'."
            )
    return bucket, "/".join(segments)


def _is_loopback(endpoint: str) -> bool:
    host = urlsplit(endpoint).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@attrs.frozen
class S3Config:
    """Everything needed to build the obstore client. Secrets never appear in ``repr``."""

    bucket: str
    prefix: str
    endpoint: str | None = attrs.field(default=None, repr=lambda value: repr(shown(value)))
    region: str = "us-east-1"
    access_key_id: str | None = attrs.field(default=None, repr=False)
    secret_access_key: str | None = attrs.field(default=None, repr=False)
    session_token: str | None = attrs.field(default=None, repr=False)
    allow_http: bool = False
    virtual_hosted_style: bool = True
    timeout: float = 60.0
    max_retries: int = 3
    #: How many requests a bulk read (load, list) keeps in flight.
    concurrency: int = 32
    #: Every this many appends, the writer copies them into one segment object (faster loads).
    segment_size: int = 128
    #: How long to keep retrying a request whose connection the server refused (restarting,
    #: overloaded) after obstore's own retries, at most ``timeout``. 0 turns it off.
    connect_retry: float = 10.0

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    @property
    def shown_endpoint(self) -> str | None:
        """The endpoint for messages and logs, without any credentials written into it."""
        return shown(self.endpoint)

    @classmethod
    def from_settings(cls, url: str, settings: Settings) -> S3Config:
        bucket, prefix = parse_url(url)

        def opt(key: str, *env_names: str, cast: Any = None) -> Any:
            value = settings.option("s3", key, cast=cast)
            if value is None:
                for name in env_names:
                    value = settings.env(name)
                    if value is not None:
                        return cast(value) if cast else value
            return value

        endpoint = opt("endpoint", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT")
        if endpoint is not None:
            endpoint = str(endpoint).rstrip("/")
            try:
                parts = urlsplit(endpoint)
                _ = parts.port  # a port that is not a number raises ValueError
                valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            except ValueError:
                valid = False
            if not valid:
                raise ConfigError(
                    f"S3 endpoint {shown(endpoint)!r} is not an http(s) URL "
                    "(AWS_ENDPOINT_URL or [plugins.s3] endpoint)."
                )
        allow_http = opt("allow_http", "AWS_ALLOW_HTTP", cast=as_bool)
        if allow_http is None:
            # Plain http is only safe where nobody else can listen: on this machine.
            allow_http = endpoint is not None and _is_loopback(endpoint)
        if endpoint and endpoint.startswith("http://") and not allow_http:
            raise ConfigError(
                f"S3 endpoint {shown(endpoint)!r} is plain http on a non-loopback host, so credentials and "
                "data would cross the network unencrypted. Use https, or set [plugins.s3] "
                "allow_http = true (or AWS_ALLOW_HTTP=true) if you trust that network."
            )
        virtual = opt("virtual_hosted_style", "AWS_VIRTUAL_HOSTED_STYLE_REQUEST", cast=as_bool)
        if virtual is None:
            # S3-compatible servers (a custom endpoint) expect path-style; AWS itself, virtual hosts.
            virtual = endpoint is None
        key_id = opt("access_key_id", "AWS_ACCESS_KEY_ID")
        secret = opt("secret_access_key", "AWS_SECRET_ACCESS_KEY")
        if (key_id is None) != (secret is None):
            raise ConfigError(
                "Only one of the S3 access key id and secret access key is set; set both "
                "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) or neither."
            )
        concurrency = opt("concurrency", cast=int) or 32
        segment_size = opt("segment_size", cast=int) or 128
        if concurrency < 1 or segment_size < 2:
            raise ConfigError("[plugins.s3] concurrency must be >= 1 and segment_size >= 2.")
        raw_retry = opt("connect_retry")
        try:
            connect_retry = 10.0 if raw_retry is None else float(raw_retry)
        except (TypeError, ValueError):
            connect_retry = -1.0
        if not connect_retry >= 0:  # also refuses NaN
            raise ConfigError(
                f"[plugins.s3] connect_retry (HYPOTEZ_S3_CONNECT_RETRY) is {raw_retry!r}; use a "
                "number of seconds >= 0 (0 turns the retries off)."
            )
        return cls(
            bucket=bucket,
            prefix=prefix,
            endpoint=endpoint,
            region=opt("region", "AWS_REGION", "AWS_DEFAULT_REGION") or "us-east-1",
            access_key_id=key_id,
            secret_access_key=secret,
            session_token=opt("session_token", "AWS_SESSION_TOKEN"),
            allow_http=bool(allow_http),
            virtual_hosted_style=bool(virtual),
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            concurrency=concurrency,
            segment_size=segment_size,
            connect_retry=min(connect_retry, settings.timeout),
        )

    def store_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``obstore.store.S3Store``."""
        config: dict[str, Any] = {
            "region": self.region,
            "virtual_hosted_style_request": self.virtual_hosted_style,
        }
        if self.endpoint:
            config["endpoint"] = self.endpoint
        if self.access_key_id is not None:
            config["access_key_id"] = self.access_key_id
            config["secret_access_key"] = self.secret_access_key
        if self.session_token is not None:
            config["session_token"] = self.session_token
        timeout = timedelta(seconds=self.timeout)
        return {
            "prefix": self.prefix or None,
            "config": config,
            "client_options": {
                "allow_http": self.allow_http,
                "timeout": timeout,
                "connect_timeout": timedelta(seconds=min(self.timeout, 10.0)),
            },
            # Bounded retries with backoff for 5xx, dropped connections and safe-request timeouts.
            "retry_config": {
                "max_retries": self.max_retries,
                "retry_timeout": timeout,
                "backoff": {
                    "init_backoff": timedelta(milliseconds=100),
                    "max_backoff": timedelta(seconds=5),
                    "base": 2,
                },
            },
        }
