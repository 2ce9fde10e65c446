"""Turn obstore's exceptions into hypotez errors that say what happened and what to do.

obstore's messages hold the request URL and the server's XML answer (never the credentials);
we keep only the S3 error code from them, so that the user sees one readable sentence.
"""

from __future__ import annotations

import re

from hypotez import StorageError

_CODE_RE = re.compile(r"<Code>([A-Za-z]+)</Code>")
_STATUS_RE = re.compile(r"status code: (\d{3})")
_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "ExpiredToken",
    "InvalidToken",
    "AuthorizationHeaderMalformed",
}


def s3_code(exc: BaseException) -> str | None:
    """The S3 error code (``NoSuchBucket``...) or the HTTP status in an obstore error."""
    text = str(exc)
    match = _CODE_RE.search(text)
    if match:
        return match.group(1)
    status = _STATUS_RE.search(text)
    return status.group(1) if status else None


#: Where the AWS SDKs (and obstore) look for credentials when none are configured.
_METADATA_SERVICE = "169.254.169.254"


def is_not_found(exc: BaseException) -> bool:
    """A missing object (but not a missing bucket, which is a configuration problem)."""
    return isinstance(exc, FileNotFoundError) and s3_code(exc) != "NoSuchBucket"


def is_connect_error(exc: BaseException) -> bool:
    """obstore gave up on connecting (refused, unreachable): the request never reached a server.

    Only then is repeating any request certainly harmless; obstore's own retries already cover
    errors after the request was sent, where the append's write id prevents a duplicate.
    """
    return "kind: Connect" in str(exc)


def translate(exc: BaseException, action: str, where: str, endpoint: str | None) -> StorageError:
    """A :class:`StorageError` for ``exc``, raised while doing ``action`` at ``where``."""
    from obstore import exceptions as obx

    code = s3_code(exc)
    server = endpoint or "AWS S3"
    text = str(exc)
    if _METADATA_SERVICE in text:
        # No credentials were configured, so obstore asked the cloud's instance metadata
        # service for some: the storage server itself was never asked, so nothing "refused".
        return StorageError(
            f"Cannot {action} at {where}: no S3 credentials are configured, and looking them up "
            f"from the instance metadata service failed ({code or 'unreachable'}). Set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or [plugins.s3] access_key_id / "
            "secret_access_key)."
        )
    if code == "NoSuchBucket":
        return StorageError(
            f"Cannot {action}: the bucket of {where} does not exist on {server}. Create it first "
            "(e.g. `aws s3 mb`), or fix the storage URL."
        )
    if (
        isinstance(exc, obx.PermissionDeniedError | obx.UnauthenticatedError)
        or code in _CREDENTIAL_CODES
        or code in ("401", "403")
    ):
        return StorageError(
            f"Cannot {action}: {server} refused the credentials for {where} ({code or 'denied'}). "
            "Check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or [plugins.s3] access_key_id / "
            "secret_access_key) and the bucket's permissions."
        )
    if "error sending request" in text or "connect" in text.lower() or "timed out" in text:
        return StorageError(
            f"Cannot {action}: {server} did not answer for {where} after the retries "
            "(server down or unreachable). Nothing was half-written: retry when it is back; "
            "an append that failed this way may or may not have been stored, so load the "
            "dialogue to check before repeating it."
        )
    first_line = text.splitlines()[0] if text else type(exc).__name__
    return StorageError(f"Cannot {action} at {where}: {first_line[:400]}")
