"""A certificate that does not verify is a configuration error: it fails the first call, it is never retried."""

from __future__ import annotations

import ssl
from types import SimpleNamespace

import aiohttp
import urllib3

from kuberay_provider.hooks.kuberay import classify_async_error, classify_sync_error


def _verify_failed() -> ssl.SSLCertVerificationError:
    return ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")


def test_a_wrapped_verification_failure_is_permanent_in_the_sync_client() -> None:
    # what urllib3 raises after its own retries: MaxRetryError(reason=SSLError(SSLCertVerificationError))
    error = urllib3.exceptions.MaxRetryError(None, "https://10.0.0.1/apis", urllib3.exceptions.SSLError(_verify_failed()))
    failure = classify_sync_error(error)
    assert failure is not None and failure.permanent and not failure.retryable


def test_a_verification_failure_is_permanent_in_the_async_client() -> None:
    key = SimpleNamespace(host="10.0.0.1", port=443, is_ssl=True, ssl=True)  # aiohttp's ConnectionKey, as read
    error = aiohttp.ClientConnectorCertificateError(key, _verify_failed())
    failure = classify_async_error(error)
    assert failure is not None and failure.permanent and not failure.retryable


def test_other_transport_errors_stay_retryable() -> None:
    for error in (ConnectionRefusedError(111, "Connection refused"),
                  urllib3.exceptions.MaxRetryError(None, "https://10.0.0.1/", urllib3.exceptions.ProtocolError("reset")),
                  ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")):
        failure = classify_sync_error(error)
        assert failure is not None and not failure.permanent and failure.retryable, error
    failure = classify_async_error(aiohttp.ServerDisconnectedError())
    assert failure is not None and failure.retryable
