"""Register the credentials a Kubernetes connection carries with Airflow's secrets masker (pure parsing)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import yaml

_USER_SECRET_FIELDS = ("token", "password", "client-key-data", "client-certificate-data")


def kubeconfig_secrets(kubeconfig: Mapping[str, Any] | str | None) -> Iterator[str]:
    """Every credential value in a kubeconfig (dict or YAML/JSON text): user tokens, passwords, keys."""
    if not kubeconfig:
        return
    if isinstance(kubeconfig, str):
        yield kubeconfig  # the whole document is a secret when it is given inline
        try:
            kubeconfig = yaml.safe_load(kubeconfig)
        except yaml.YAMLError:
            return
    if not isinstance(kubeconfig, Mapping):
        return
    for user in kubeconfig.get("users") or []:
        fields = (user or {}).get("user") or {}
        for key in _USER_SECRET_FIELDS:
            value = fields.get(key)
            if isinstance(value, str) and value:
                yield value
        provider_config = ((fields.get("auth-provider") or {}).get("config")) or {}
        for key in ("access-token", "refresh-token", "client-secret", "id-token"):
            if provider_config.get(key):
                yield provider_config[key]


def mask_connection_secrets(extras: Mapping[str, Any]) -> int:
    """Mask the inline kubeconfig and the credentials in a referenced kubeconfig file; returns how many."""
    from airflow.providers.common.compat.sdk import mask_secret

    count = 0
    sources: list[Any] = [extras.get("kube_config") or extras.get("extra__kubernetes__kube_config")]
    path = extras.get("kube_config_path") or extras.get("extra__kubernetes__kube_config_path")
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                sources.append(yaml.safe_load(handle))
        except (OSError, yaml.YAMLError):
            pass
    for source in sources:
        for secret in kubeconfig_secrets(source):
            mask_secret(secret)
            count += 1
    return count
