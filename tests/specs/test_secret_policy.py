"""The secret policy: real ML-ecosystem variables pass, real secrets are refused, and no value is ever shown."""

from __future__ import annotations

import copy

import pytest

from kuberay_provider import specs
from kuberay_provider.errors import InvalidParameterError
from kuberay_provider.specs import secret_policy

# Real variables from the Hugging Face, PyTorch/NCCL, OpenMP, W&B, MLflow, Ray and Google ecosystems (and a few
# whose names contain a credential word but whose values are paths, numbers, booleans or short words).
ORDINARY = {
    # Hugging Face / transformers / vLLM
    "TOKENIZERS_PARALLELISM": "false", "MAX_TOKENS": "512", "MAX_NEW_TOKENS": "256", "HF_HOME": "/data/hf",
    "HF_HUB_ENABLE_HF_TRANSFER": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": "/cache/datasets",
    "TRANSFORMERS_CACHE": "/cache/transformers", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_TOKEN_PATH": "/var/secrets/hf/token",
    "VLLM_USE_V1": "1", "MAX_PROMPT_TOKENS": "2048",
    # PyTorch / NCCL / CUDA
    "NCCL_SOCKET_IFNAME": "eth0", "NCCL_DEBUG": "INFO", "NCCL_IB_DISABLE": "1", "NCCL_P2P_DISABLE": "1",
    "TORCH_DISTRIBUTED_DEBUG": "DETAIL", "CUDA_VISIBLE_DEVICES": "0,1,2,3",
    "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500",
    "TORCH_NCCL_ASYNC_ERROR_HANDLING": "1", "TORCHINDUCTOR_CACHE_DIR": "/tmp/inductor",
    # OpenMP / MKL
    "OMP_NUM_THREADS": "4", "OMP_PROC_BIND": "close", "OMP_PLACES": "cores", "MKL_NUM_THREADS": "4",
    "KMP_AFFINITY": "granularity=fine,compact,1,0",
    # Weights & Biases
    "WANDB_MODE": "offline", "WANDB_PROJECT": "churn-model", "WANDB_ENTITY": "ml-team", "WANDB_DIR": "/tmp/wandb",
    "WANDB_SILENT": "true", "WANDB_BASE_URL": "https://api.wandb.ai",
    # MLflow
    "MLFLOW_TRACKING_URI": "http://mlflow.mlflow.svc.cluster.local:5000", "MLFLOW_EXPERIMENT_NAME": "churn",
    "MLFLOW_S3_ENDPOINT_URL": "http://minio:9000", "MLFLOW_TRACKING_INSECURE_TLS": "false",
    # Ray
    "RAY_DEDUP_LOGS": "0", "RAY_BACKEND_LOG_LEVEL": "debug", "RAY_ADDRESS": "auto", "RAY_memory_monitor_refresh_ms": "0",
    "RAY_TRAIN_V2_ENABLED": "1", "RAY_DATA_VERBOSE_PROGRESS": "1", "RAY_AUTH_MODE": "token",
    "RAY_gcs_rpc_server_reconnect_timeout_s": "60",
    # Google Cloud
    "GOOGLE_APPLICATION_CREDENTIALS": "/var/secrets/key.json", "GOOGLE_CLOUD_PROJECT": "my-project-123456",
    "CLOUDSDK_CORE_PROJECT": "my-project", "GOOGLE_CLOUD_REGION": "us-central1", "GRPC_DNS_RESOLVER": "native",
    "BIGQUERY_EMULATOR_HOST": "http://localhost:9050", "GCS_BUCKET": "gs://ml-artifacts",
    # Credential words in the name, but not a secret in the value
    "SECRET_NAME": "db-creds", "TOKEN_LIMIT": "4096", "PASSWORD_MIN_LENGTH": "12", "AUTH_TOKEN_TTL": "3600",
    "API_KEY_HEADER": "X-Api-Key", "OPENAI_API_BASE": "https://api.openai.com/v1", "JWT_ALGORITHM": "HS256",
    "HF_TOKEN": "$(HF_TOKEN_FROM_SECRET)", "AWS_REGION": "us-east-1", "USE_AUTH_TOKEN": "true",
}

# Real secret shapes (formats as their issuers document them; the values themselves are made up).
SECRETS = {
    "HF_TOKEN": "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz01234567",
    "GITHUB_TOKEN": "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "GH_PAT": "github_pat_11ABCDEFG0123456789_" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX012",
    "OPENAI_API_KEY": "sk-proj-" + "abcdEFGH1234ijklMNOP5678qrstUVWX",
    "ANTHROPIC_API_KEY": "sk-ant-api03-" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdEf",
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "SLACK_BOT_TOKEN": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "GITLAB_TOKEN": "glpat-" + "AbCdEfGhIjKlMnOpQrSt",
    "GOOGLE_API_KEY": "AIza" + "SyA1234567890abcdefghijklmnopqrstu",
    "WANDB_API_KEY": "0123456789abcdef0123456789abcdef01234567",
    "DATABASE_URL": "postgresql://app:s3cretP4ss@db.internal:5432/app",
    "MLFLOW_TRACKING_PASSWORD": "Tr0ub4dor&3xyz",
    "TLS_KEY": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA...\n-----END RSA PRIVATE KEY-----",
    "JWT": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "STRIPE_KEY": "sk_live_" + "51H8xYzAbCdEfGhIjKlMnOpQr",
    "NPM_TOKEN": "npm_" + "abcdefghijklmnopqrstuvwxyz0123456789",
    "AZURE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=abc123XYZ/+==;"
                                       "EndpointSuffix=core.windows.net",
    "DATABRICKS_TOKEN": "dapi0123456789abcdef0123456789abcdef",
    "REDIS_PASSWORD": "9f8e7d6c5b4a",
    "RAY_AUTH_TOKEN": "3f" * 32,
    "GOOGLE_OAUTH_ACCESS_TOKEN": "ya29." + "a0AfH6SMBxAbCdEfGhIjKlMnOpQrStUvWxYz",
    "MY_SETTING": "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2",  # a known format under any name
    "clientSecret": "Q~8vR2yLmN4pK7sT1wX3zA6bC9dE",
}


def test_enough_real_variables_and_secrets():
    assert len(ORDINARY) >= 40 and len(SECRETS) >= 15


def test_no_false_alarm_on_real_variables():
    alarms = {n: secret_policy.secret_reason(n, v) for n, v in ORDINARY.items() if secret_policy.secret_reason(n, v)}
    assert alarms == {}


def test_no_real_secret_missed():
    missed = [n for n, v in SECRETS.items() if secret_policy.secret_reason(n, v) is None]
    assert missed == []


def test_credential_names_by_whole_components():
    for name in ("HF_TOKEN", "WANDB_API_KEY", "DB_PASSWORD", "CLIENT_SECRET", "wandbApiKey", "aws-secret-access-key",
                 "GITHUB_PAT", "SSH_PRIVATE_KEY", "PGPASSWORD_X_PASSWD"):
        assert secret_policy.is_credential_name(name), name
    for name in ("MAX_TOKENS", "TOKENIZERS_PARALLELISM", "SECRETS_DIR", "PASSWORDLESS", "KEYBOARD", "MONKEY_PATCH",
                 "NUM_KEYS", "TOKENIZER_NAME"):
        assert not secret_policy.is_credential_name(name), name


def _manifest(env: dict[str, str]) -> dict:
    spec = specs.build_ray_cluster_spec(
        head=specs.NodeGroup.parse({"env": env}, "head", worker=False), worker_groups=[],
        pod=specs.PodSettings(image="rayproject/ray:2.60.0"))
    return copy.deepcopy(specs.build_rayjob(name="job", namespace="ns", job=specs.JobSettings(entrypoint="python x.py"),
                                            cluster_spec=spec))


def test_ordinary_variables_pass_in_a_manifest_and_in_runtime_env():
    specs.validate_rayjob(_manifest(ORDINARY))
    manifest = _manifest({})
    manifest["spec"]["runtimeEnvYAML"] = specs.runtime_env_yaml({"env_vars": ORDINARY})
    specs.validate_rayjob(manifest)


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_every_secret_is_refused_in_compact_parameters_without_showing_it(name):
    task_spec = specs.build_ray_cluster_spec(
        head=specs.NodeGroup.parse({"env": {name: SECRETS[name]}}, "head", worker=False), worker_groups=[],
        pod=specs.PodSettings(image="rayproject/ray:2.60.0"))
    with pytest.raises(InvalidParameterError) as err:
        specs.validate_ray_cluster_spec(task_spec)
    assert err.value.parameter == f"head.env[{name!r}]"
    assert err.value.value == secret_policy.HIDDEN
    message = str(err.value)
    assert SECRETS[name] not in message and SECRETS[name][:8] not in message and "***" not in message
    assert "secret_env" in message and "allow_env" in message


@pytest.mark.parametrize("where", ["container", "runtime_env", "submitter", "entrypoint"])
def test_secrets_are_refused_in_manifests_everywhere(where):
    token = SECRETS["GITHUB_TOKEN"]
    m = _manifest({})
    if where == "container":
        m["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"] = [
            {"name": "GITHUB_TOKEN", "value": token}]
    elif where == "runtime_env":
        m["spec"]["runtimeEnvYAML"] = f"env_vars:\n  GH: {token}\n"
    elif where == "submitter":
        m["spec"]["submitterPodTemplate"] = {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "s", "image": "i", "env": [{"name": "X", "value": token}]}]}}
    else:
        m["spec"]["entrypoint"] = f"python x.py --token {token}"
    with pytest.raises(InvalidParameterError, match="literal secret") as err:
        specs.validate_rayjob(m)
    assert token not in str(err.value) and token[:10] not in str(err.value)


def test_allow_env_is_the_escape_hatch():
    m = _manifest({"DB_PASSWORD": "not-a-real-one-but-long"})
    with pytest.raises(InvalidParameterError):
        specs.validate_rayjob(m)
    specs.validate_rayjob(m, allow_env=["DB_PASSWORD"])
    with pytest.raises(InvalidParameterError) as err:
        specs.reject_inline_secrets({"DB_PASSWORD": "not-a-real-one-but-long"}, "env")
    assert err.value.value == "<hidden>"
    specs.reject_inline_secrets({"DB_PASSWORD": "not-a-real-one-but-long"}, "env", allow=["DB_PASSWORD"])


def test_non_secret_errors_show_the_real_value_never_stars():
    """Only secrets are hidden: any other refused value is shown as given."""
    m = _manifest({"MAX_TOKENS": "512"})
    m["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"][0]["name"] = "MAX TOKENS"
    with pytest.raises(InvalidParameterError) as err:
        specs.validate_rayjob(m)
    assert "'MAX TOKENS'" in str(err.value) and "***" not in str(err.value) and "<hidden>" not in str(err.value)


def test_the_operator_passes_allow_env_to_the_policy():
    from kuberay_provider.operators.rayjob import RayJobOperator

    env = {"env_vars": {"DB_PASSWORD": "Zq8rT2vLp9XwN4mK7sB1"}}
    with pytest.raises(InvalidParameterError, match="allow_env") as refused:
        RayJobOperator(task_id="t", entrypoint="python x.py", runtime_env=env)
    assert "Zq8rT2vLp9XwN4mK7sB1" not in str(refused.value)
    RayJobOperator(task_id="t", entrypoint="python x.py", runtime_env=env, allow_env=["DB_PASSWORD"])
    with pytest.raises(InvalidParameterError, match=r"allow_env=.*list of environment variable names"):
        RayJobOperator(task_id="t", entrypoint="python x.py", runtime_env=env, allow_env="DB_PASSWORD")
