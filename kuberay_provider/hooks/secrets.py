"""Register the credentials a Kubernetes connection carries with Airflow's secrets masker (pure parsing)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
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


def default_kubeconfig_paths(config_file: str | None = None) -> list[str]:
    """The kubeconfig files the Kubernetes client falls back to when a connection names none: the hook's
    ``config_file``, else every file in ``$KUBECONFIG``, else ``~/.kube/config``."""
    if config_file:
        return [config_file]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [p for p in env.split(os.pathsep) if p]
    return [os.path.expanduser("~/.kube/config")]


def mask_connection_secrets(extras: Mapping[str, Any], fallback_paths: Iterable[str] = ()) -> int:
    """Mask the inline kubeconfig and the credentials of the kubeconfig file(s) the client will read (the
    connection's ``kube_config_path``, else ``fallback_paths``); returns how many values were registered."""
    from kuberay_provider.compat import mask_secret

    count = 0
    inline = extras.get("kube_config") or extras.get("extra__kubernetes__kube_config")
    sources: list[Any] = [inline]
    path = extras.get("kube_config_path") or extras.get("extra__kubernetes__kube_config_path")
    paths = [path] if path else ([] if inline else list(fallback_paths))
    for candidate in paths:
        try:
            with open(candidate, encoding="utf-8") as handle:
                sources.append(yaml.safe_load(handle))
        except (OSError, yaml.YAMLError):
            pass
    for source in sources:
        for secret in kubeconfig_secrets(source):
            mask_secret(secret)
            count += 1
    return count
