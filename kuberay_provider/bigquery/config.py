"""Connection settings for BigQuery, shipped to Ray tasks and Spark executors. No heavy imports."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kuberay_provider.errors import InvalidParameterError

ENV_PROJECT = "KUBERAY_BQ_PROJECT"
ENV_LOCATION = "KUBERAY_BQ_LOCATION"
ENV_REST_ENDPOINT = "KUBERAY_BQ_REST_ENDPOINT"
ENV_GRPC_ENDPOINT = "KUBERAY_BQ_GRPC_ENDPOINT"
ENV_CREDENTIALS_FILE = "GOOGLE_APPLICATION_CREDENTIALS"


@dataclass(frozen=True)
class BigQueryConfig:
    """Where and as whom to talk to BigQuery.

    Attributes:
        project: billing / default project id.
        location: BigQuery location (e.g. ``"EU"``) for jobs; ``None`` lets BigQuery choose.
        credentials_file: path to a service-account key file.
        credentials_info: a service-account key as a JSON string or dict (never shown in repr).
        rest_endpoint: REST API override, e.g. ``"http://127.0.0.1:9050"`` (emulator).
        grpc_endpoint: Storage API override, ``"host:port"``, e.g. ``"127.0.0.1:9060"`` (emulator).

    With neither credentials field set, Application Default Credentials are used
    (Workload Identity on GKE / Composer); with an endpoint override, anonymous credentials.
    """

    project: str
    location: str | None = None
    credentials_file: str | None = None
    credentials_info: str | Mapping[str, Any] | None = field(default=None, repr=False)
    rest_endpoint: str | None = None
    grpc_endpoint: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.project, str) or not self.project.strip():
            raise InvalidParameterError("project", self.project, "a non-empty BigQuery project id is required")
        if self.rest_endpoint is not None and not self.rest_endpoint.startswith(("http://", "https://")):
            raise InvalidParameterError("rest_endpoint", self.rest_endpoint, "must start with http:// or https://")
        if self.grpc_endpoint is not None and (
            "://" in self.grpc_endpoint or ":" not in self.grpc_endpoint.rsplit("]", 1)[-1]
        ):
            raise InvalidParameterError("grpc_endpoint", self.grpc_endpoint, "must be host:port without a scheme")
        if self.credentials_file is not None and self.credentials_info is not None:
            raise InvalidParameterError("credentials_info", "***", "give credentials_file or credentials_info, not both")
        if isinstance(self.credentials_info, str):
            try:
                json.loads(self.credentials_info)
            except ValueError:
                raise InvalidParameterError("credentials_info", "***", "must be a JSON service-account key") from None

    def __repr__(self) -> str:
        shown = "'***'" if self.credentials_info is not None else "None"
        return (
            f"BigQueryConfig(project={self.project!r}, location={self.location!r}, "
            f"credentials_file={self.credentials_file!r}, credentials_info={shown}, "
            f"rest_endpoint={self.rest_endpoint!r}, grpc_endpoint={self.grpc_endpoint!r})"
        )

    __str__ = __repr__

    @property
    def is_emulator(self) -> bool:
        """True when an endpoint override is set (the local emulator)."""
        return self.rest_endpoint is not None or self.grpc_endpoint is not None

    @property
    def credentials_dict(self) -> dict[str, Any] | None:
        """credentials_info parsed into a dict, or None."""
        if self.credentials_info is None:
            return None
        if isinstance(self.credentials_info, str):
            return json.loads(self.credentials_info)
        return dict(self.credentials_info)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> BigQueryConfig:
        """Build from ``KUBERAY_BQ_*`` and ``GOOGLE_APPLICATION_CREDENTIALS``; keyword overrides win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "project": env.get(ENV_PROJECT),
            "location": env.get(ENV_LOCATION) or None,
            "rest_endpoint": env.get(ENV_REST_ENDPOINT) or None,
            "grpc_endpoint": env.get(ENV_GRPC_ENDPOINT) or None,
            "credentials_file": env.get(ENV_CREDENTIALS_FILE) or None,
        }
        values.update(overrides)
        if not values.get("project"):
            raise InvalidParameterError(ENV_PROJECT, values.get("project"), "set it or pass project=")
        return cls(**values)

    def to_options(self) -> dict[str, str]:
        """String options for carrying this config through Spark data source options."""
        options = {"project": self.project}
        for key in ("location", "credentials_file", "rest_endpoint", "grpc_endpoint"):
            value = getattr(self, key)
            if value is not None:
                options[key] = value
        if self.credentials_info is not None:
            options["credentials_info"] = json.dumps(self.credentials_dict)
        return options

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> BigQueryConfig:
        """Inverse of :meth:`to_options`; keys are case-insensitive (Spark lower-cases them)."""
        lowered = {k.lower(): v for k, v in options.items()}
        if "project" not in lowered:
            return cls.from_env(
                **{k: lowered[k] for k in ("location", "credentials_file", "rest_endpoint", "grpc_endpoint") if k in lowered}
            )
        return cls(
            project=lowered["project"],
            location=lowered.get("location"),
            credentials_file=lowered.get("credentials_file"),
            credentials_info=lowered.get("credentials_info"),
            rest_endpoint=lowered.get("rest_endpoint"),
            grpc_endpoint=lowered.get("grpc_endpoint"),
        )
