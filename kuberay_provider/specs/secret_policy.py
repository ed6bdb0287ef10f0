"""Which literal environment variables are secrets (pure): they must come from a Kubernetes Secret instead.

A variable is refused when it *is* a secret, not when its name merely contains a scary word:

* a **known token format** anywhere, whatever the name (GitHub, Hugging Face, OpenAI/Anthropic, AWS, Slack,
  GitLab, Google API keys and OAuth tokens, Stripe, npm, PyPI, Databricks, private keys, JWTs, URLs with a
  password, connection strings with an account key);
* or a **credential-shaped name** - judged by its components, so ``HF_TOKEN`` and ``WANDB_API_KEY`` are, and
  ``MAX_TOKENS``, ``TOKENIZERS_PARALLELISM`` and ``GOOGLE_APPLICATION_CREDENTIALS`` are not - **with a value that
  looks like one**: not a path, URL without a password, boolean, number, short word or reference to another variable.

``allow`` names variables the caller vouches for (the escape hatch for a false alarm). Errors never show the value.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import yaml

from kuberay_provider.errors import InvalidParameterError

#: What an error shows instead of a secret's value.
HIDDEN = "<hidden>"
RULE_PREFIX = "is a literal secret"
#: Name components that make a name credential-shaped on their own (whole components, not substrings).
SECRET_WORDS = frozenset({"PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "APIKEY", "CREDENTIAL",
                          "CREDENTIALS", "PRIVATEKEY", "SECRETKEY", "ACCESSKEY", "AUTHKEY", "PAT"})
#: ``<word> KEY`` pairs that are credential-shaped (``API_KEY``, ``ACCESS_KEY``, ``SECRET_ACCESS_KEY``...).
KEY_QUALIFIERS = frozenset({"API", "ACCESS", "SECRET", "PRIVATE", "AUTH", "SIGNING", "ENCRYPTION", "MASTER",
                            "ACCOUNT", "SERVICE", "CLIENT", "LICENSE", "WRITE", "READ", "ADMIN", "SAS"})
#: Known token formats, recognised whatever the variable is called.
TOKEN_FORMATS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((label, re.compile(rx)) for label, rx in (
    ("a GitHub token", r"\b(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})\b"),
    ("a Hugging Face token", r"\bhf_[A-Za-z0-9]{30,}\b"),
    ("an OpenAI/Anthropic API key", r"\bsk-(?:proj-|ant-(?:api\d+-)?|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
    ("an AWS access key id", r"\b(AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b"),
    ("a Slack token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    ("a Slack webhook", r"hooks\.slack\.com/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]+"),
    ("a GitLab token", r"\bglpat-[A-Za-z0-9_-]{20,}"),
    ("a Google API key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
    ("a Google OAuth access token", r"\bya29\.[0-9A-Za-z_-]{20,}"),
    ("a Stripe key", r"\b[rs]k_(live|test)_[0-9A-Za-z]{20,}"),
    ("an npm token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("a PyPI token", r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{20,}"),
    ("a Databricks token", r"\bdapi[0-9a-f]{32}\b"),
    ("a private key", r"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----"),
    ("a JSON Web Token", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ("a URL with a password", r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:[^/\s@]+@[^/\s]+"),
    ("a connection string with a key", r"(?i)(AccountKey|SharedAccessKey|Password|Pwd)=[^;\s]{6,}"),
))
_WORDS = re.compile(r"[A-Z]+[0-9]*|[0-9]+")
_BOOLEAN = frozenset({"true", "false", "yes", "no", "on", "off", "y", "n", "none", "null", "enabled", "disabled"})
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?[a-zA-Z%]{0,3}$")
_PATH = re.compile(r"^(/|\./|\.\./|~/|[A-Za-z]:\\|[a-z][a-z0-9+.-]*://)")
_REFERENCE = re.compile(r"^\$(\([A-Za-z_][A-Za-z0-9_]*\)|\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)$")
_SHORT_WORD = re.compile(r"^[A-Za-z][A-Za-z_.-]{0,15}$")
MIN_SECRET_LENGTH = 8


def name_components(name: str) -> list[str]:
    """``wandbApiKey`` / ``WANDB_API_KEY`` / ``wandb-api.key`` → ``['WANDB', 'API', 'KEY']``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return _WORDS.findall(spaced.upper().replace("-", "_").replace(".", "_"))


def is_credential_name(name: str) -> bool:
    """True when one of the name's components is a credential word (``TOKEN``, not ``TOKENS`` or ``TOKENIZERS``)."""
    words = name_components(name)
    joined = ["".join(words[i:i + 2]) for i in range(len(words) - 1)]
    if any(w in SECRET_WORDS for w in [*words, *joined]):
        return True
    return any(a in KEY_QUALIFIERS and b == "KEY" for a, b in itertools.pairwise(words))


def looks_like_a_secret_value(value: Any) -> bool:
    """True unless the value is plainly not a secret: empty, short, a path or URL (without a password), a boolean,
    a number, a short word or a ``$(VAR)`` reference."""
    text = str(value).strip() if isinstance(value, (str, int, float)) and not isinstance(value, bool) else ""
    if len(text) < MIN_SECRET_LENGTH or text.lower() in _BOOLEAN:
        return False
    return not (_NUMBER.match(text) or _PATH.match(text) or _REFERENCE.match(text) or _SHORT_WORD.match(text)
                or "{{" in text)


def known_format(value: Any) -> str | None:
    """The label of the known token format ``value`` contains, or None."""
    if not isinstance(value, str):
        return None
    for label, pattern in TOKEN_FORMATS:
        if pattern.search(value):
            return label
    return None


def secret_reason(name: Any, value: Any) -> str | None:
    """Why ``name=value`` is a literal secret, or None when it is not one."""
    if (label := known_format(value)) is not None:
        return f"{RULE_PREFIX}: the value is {label}"
    if isinstance(name, str) and is_credential_name(name) and looks_like_a_secret_value(value):
        return f"{RULE_PREFIX}: a credential name with a credential-like value"
    return None


def _advice(name: Any) -> str:
    return (f"; pass it as secret_env={{'{name}': 'k8s-secret-name:key'}} (a Kubernetes Secret reference) or use "
            "Workload Identity, so it never appears in the RayJob spec; if it is not a secret, list it in allow_env")


def env_problems(env: Mapping[str, Any], path: str, *, allow: Collection[str] = ()) -> Iterator[tuple[str, str]]:
    """``(path, rule)`` for every literal secret in a ``{name: value}`` mapping."""
    for name, value in env.items():
        if name in allow:
            continue
        reason = secret_reason(name, value)
        if reason:
            yield f"{path}[{name!r}]", reason + _advice(name)


def reject_inline_secrets(env: Mapping[str, Any], parameter: str, *, allow: Collection[str] = ()) -> None:
    """Raise :class:`InvalidParameterError` (the value hidden) for the first literal secret in ``env``."""
    for path, rule in env_problems(env, parameter, allow=allow):
        raise InvalidParameterError(path, HIDDEN, rule)


def _container_env_problems(container: Any, path: str, allow: Collection[str]) -> Iterator[tuple[str, str]]:
    """Literal secrets in a container's ``env`` list, reported as ``env[i]``."""
    env = container.get("env") if isinstance(container, Mapping) else None
    for i, var in enumerate(env if isinstance(env, list) else ()):
        if isinstance(var, Mapping) and var.get("value") is not None and var.get("name") not in allow:
            reason = secret_reason(var.get("name"), var["value"])
            if reason:
                yield f"{path}[{i}]", reason + _advice(var.get("name"))


def manifest_problems(manifest: Mapping[str, Any], *, allow: Collection[str] = ()) -> list[tuple[str, str]]:
    """Literal secrets anywhere a RayJob/RayCluster carries environment variables: every container and init
    container of every pod template, the autoscaler's env and ``runtimeEnvYAML``'s ``env_vars``."""
    found: list[tuple[str, str]] = []
    spec = manifest.get("spec") or {}
    cluster, prefix = (spec.get("rayClusterSpec"), "spec.rayClusterSpec") if "rayClusterSpec" in spec or \
        manifest.get("kind") == "RayJob" else (spec, "spec")
    templates: list[tuple[str, Any]] = []
    if isinstance(cluster, Mapping):
        templates.append((f"{prefix}.headGroupSpec.template", (cluster.get("headGroupSpec") or {}).get("template")))
        templates += [(f"{prefix}.workerGroupSpecs[{i}].template", g.get("template"))
                      for i, g in enumerate(cluster.get("workerGroupSpecs") or ()) if isinstance(g, Mapping)]
        options = cluster.get("autoscalerOptions")
        if isinstance(options, Mapping):
            found += _container_env_problems(options, f"{prefix}.autoscalerOptions.env", allow)
    if isinstance(spec.get("submitterPodTemplate"), Mapping):
        templates.append(("spec.submitterPodTemplate", spec["submitterPodTemplate"]))
    for path, template in templates:
        pod = (template or {}).get("spec") if isinstance(template, Mapping) else None
        for kind in ("initContainers", "containers"):
            for i, container in enumerate((pod or {}).get(kind) or () if isinstance(pod, Mapping) else ()):
                found += _container_env_problems(container, f"{path}.spec.{kind}[{i}].env", allow)
                for field in ("command", "args"):
                    words = container.get(field) if isinstance(container, Mapping) else None
                    for j, word in enumerate(words or () if isinstance(words, list) else ()):
                        if (label := known_format(word)) is not None:
                            found.append((f"{path}.spec.{kind}[{i}].{field}[{j}]", f"{RULE_PREFIX}: the value is {label}"))
    if (label := known_format(spec.get("entrypoint"))) is not None:
        found.append(("spec.entrypoint", f"{RULE_PREFIX}: the command line contains {label}"))
    text = spec.get("runtimeEnvYAML")
    if isinstance(text, str):
        try:
            runtime_env = yaml.safe_load(text)
        except yaml.YAMLError:
            runtime_env = None  # reported by the KubeRay rules
        env_vars = runtime_env.get("env_vars") if isinstance(runtime_env, dict) else None
        if isinstance(env_vars, Mapping):
            found += env_problems(env_vars, "spec.runtimeEnvYAML.env_vars", allow=allow)
    for key, value in (spec.get("metadata") or {}).items() if isinstance(spec.get("metadata"), Mapping) else ():
        if (label := known_format(value)) is not None and key not in allow:
            found.append((f"spec.metadata[{key!r}]", f"{RULE_PREFIX}: the value is {label}"))
    return found
