"""The one way to build BigQuery clients from a :class:`BigQueryConfig`.

Emulator workarounds (anonymous credentials, plain-HTTP REST, insecure gRPC channel, a concrete content
type on multipart uploads) apply only when the config carries an endpoint override.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from kuberay_provider.bigquery.config import BigQueryConfig

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.cloud import bigquery
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient, BigQueryWriteClient

SCOPES = ("https://www.googleapis.com/auth/bigquery", "https://www.googleapis.com/auth/cloud-platform")
# Unlimited gRPC message sizes: Arrow record batches of wide tables exceed the 4 MiB default.
GRPC_OPTIONS = (("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1))


def credentials(config: BigQueryConfig) -> Credentials:
    """Credentials for ``config``: key JSON, key file, anonymous (emulator) or Application Default Credentials."""
    from google.oauth2 import service_account

    if config.credentials_info is not None:
        return service_account.Credentials.from_service_account_info(config.credentials_dict, scopes=SCOPES)
    if config.credentials_file is not None:
        return service_account.Credentials.from_service_account_file(config.credentials_file, scopes=SCOPES)
    if config.is_emulator:
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()
    import google.auth

    creds, _ = google.auth.default(scopes=list(SCOPES))
    return creds


@functools.cache
def _emulator_client_class() -> type[bigquery.Client]:
    from google.cloud import bigquery
    from google.cloud.bigquery import client as client_module
    from google.resumable_media.requests import MultipartUpload

    class EmulatorClient(bigquery.Client):
        """bigquery.Client whose small (multipart) uploads send a concrete content type.

        The emulator rejects the generic ``*/*`` content type the stock client uses for
        the media part of a multipart upload; real BigQuery accepts both.
        """

        def _do_multipart_upload(self, stream, metadata, size, num_retries, timeout, project=None):
            data = stream.read(size)
            if len(data) < size:
                raise ValueError(client_module._READ_LESS_THAN_SIZE.format(size, len(data)))
            headers = client_module._get_upload_headers(self._connection.user_agent)
            url = client_module._MULTIPART_URL_TEMPLATE.format(
                host=self._connection.API_BASE_URL, project=project or self.project
            )
            upload = MultipartUpload(url, headers=headers)
            return upload.transmit(self._http, data, metadata, "application/octet-stream", timeout=timeout)

    return EmulatorClient


def bigquery_client(config: BigQueryConfig) -> bigquery.Client:
    """A REST ``google.cloud.bigquery.Client`` for ``config``."""
    from google.cloud import bigquery

    kwargs: dict[str, Any] = {"project": config.project, "credentials": credentials(config), "location": config.location}
    if config.rest_endpoint is not None:
        kwargs["client_options"] = {"api_endpoint": config.rest_endpoint}
        return _emulator_client_class()(**kwargs)
    return bigquery.Client(**kwargs)


def _grpc_transport(transport_cls: Any, config: BigQueryConfig) -> Any:
    import grpc

    channel = grpc.insecure_channel(config.grpc_endpoint, options=list(GRPC_OPTIONS))
    return transport_cls(channel=channel)


def read_client(config: BigQueryConfig) -> BigQueryReadClient:
    """A Storage Read API client; an insecure gRPC channel to ``grpc_endpoint`` for the emulator."""
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient
    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import BigQueryReadGrpcTransport

    if config.grpc_endpoint is not None:
        return BigQueryReadClient(transport=_grpc_transport(BigQueryReadGrpcTransport, config))
    return BigQueryReadClient(credentials=credentials(config))


def write_client(config: BigQueryConfig) -> BigQueryWriteClient:
    """A Storage Write API client; an insecure gRPC channel to ``grpc_endpoint`` for the emulator."""
    from google.cloud.bigquery_storage_v1 import BigQueryWriteClient
    from google.cloud.bigquery_storage_v1.services.big_query_write.transports import BigQueryWriteGrpcTransport

    if config.grpc_endpoint is not None:
        return BigQueryWriteClient(transport=_grpc_transport(BigQueryWriteGrpcTransport, config))
    return BigQueryWriteClient(credentials=credentials(config))
