"""BigQueryConfig, client construction and import cost: no emulator needed."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pytest

from kuberay_provider.bigquery.config import BigQueryConfig
from kuberay_provider.errors import InvalidParameterError

SECRET = {"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----SECRET", "client_email": "a@b.c"}


def test_repr_masks_credentials_info_and_pickles() -> None:
    config = BigQueryConfig(project="p", credentials_info=json.dumps(SECRET))
    assert "SECRET" not in repr(config) and "SECRET" not in str(config) and "***" in repr(config)
    assert pickle.loads(pickle.dumps(config)) == config
    assert not config.is_emulator


def test_from_env_and_options_round_trip() -> None:
    env = {
        "KUBERAY_BQ_PROJECT": "proj",
        "KUBERAY_BQ_LOCATION": "EU",
        "KUBERAY_BQ_REST_ENDPOINT": "http://127.0.0.1:9050",
        "KUBERAY_BQ_GRPC_ENDPOINT": "127.0.0.1:9060",
        "GOOGLE_APPLICATION_CREDENTIALS": "/keys/sa.json",
    }
    config = BigQueryConfig.from_env(env)
    assert config == BigQueryConfig("proj", "EU", "/keys/sa.json", None, "http://127.0.0.1:9050", "127.0.0.1:9060")
    assert config.is_emulator
    assert BigQueryConfig.from_options({k.upper(): v for k, v in config.to_options().items()}) == config


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"project": ""}, "project"),
        ({"project": "p", "rest_endpoint": "127.0.0.1:9050"}, "rest_endpoint"),
        ({"project": "p", "grpc_endpoint": "http://127.0.0.1:9060"}, "grpc_endpoint"),
        ({"project": "p", "credentials_info": "not json"}, "credentials_info"),
    ],
)
def test_bad_config_names_the_parameter(kwargs: dict, parameter: str) -> None:
    with pytest.raises(InvalidParameterError, match=parameter):
        BigQueryConfig(**kwargs)


def test_from_env_without_project() -> None:
    with pytest.raises(InvalidParameterError, match="KUBERAY_BQ_PROJECT"):
        BigQueryConfig.from_env({})


def test_emulator_clients_use_anonymous_credentials_and_endpoints() -> None:
    from google.auth.credentials import AnonymousCredentials

    from kuberay_provider.bigquery.clients import bigquery_client, read_client, write_client

    config = BigQueryConfig(project="p", rest_endpoint="http://127.0.0.1:1", grpc_endpoint="127.0.0.1:1")
    client = bigquery_client(config)
    assert isinstance(client._credentials, AnonymousCredentials)
    assert client._connection.API_BASE_URL == "http://127.0.0.1:1"
    assert type(client).__name__ == "EmulatorClient"
    read_client(config)
    write_client(config)


def test_package_import_is_light() -> None:
    code = (
        "import sys, kuberay_provider.bigquery, kuberay_provider.bigquery.config;"
        "heavy = [m for m in ('google.cloud', 'ray', 'pyspark', 'pyarrow', 'grpc') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
