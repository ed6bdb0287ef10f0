"""Apache Airflow provider for KubeRay: transient RayJobs, deferrable waits, sensors and a local stack."""

from __future__ import annotations

__version__ = "0.1.0"


def get_provider_info() -> dict:
    """Return the provider metadata Airflow reads through the ``apache_airflow_provider`` entry point."""
    from kuberay_provider.connection_form import provider_conn_fields, provider_ui_field_behaviour

    return {
        "package-name": "airflow-provider-kuberay",
        "name": "KubeRay",
        "description": "Run transient Ray clusters on Kubernetes (KubeRay RayJob) from Airflow.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "kuberay",
                "hook-class-name": "kuberay_provider.hooks.kuberay.KubeRayHook",
                "hook-name": "KubeRay (Kubernetes cluster)",
                # the connection form, declared once in connection_form.py (Airflow >= 3.2 reads it here; older
                # Airflow calls KubeRayHook.get_connection_form_widgets)
                "conn-fields": provider_conn_fields(),
                "ui-field-behaviour": provider_ui_field_behaviour(),
            }
        ],
        "hook-class-names": ["kuberay_provider.hooks.kuberay.KubeRayHook"],
        "operators": [
            {
                "integration-name": "KubeRay",
                "python-modules": [
                    "kuberay_provider.operators.rayjob",
                    "kuberay_provider.operators.raycluster",
                    "kuberay_provider.operators.janitor",
                ],
            }
        ],
        "sensors": [{"integration-name": "KubeRay", "python-modules": ["kuberay_provider.sensors.rayjob"]}],
        "triggers": [{"integration-name": "KubeRay", "python-modules": ["kuberay_provider.triggers.rayjob"]}],
        "hooks": [{"integration-name": "KubeRay", "python-modules": ["kuberay_provider.hooks.kuberay"]}],
        "extra-links": [
            "kuberay_provider.links.RayDashboardLink",
            "kuberay_provider.links.CloudLoggingLink",
            "kuberay_provider.links.GkeWorkloadLink",
        ],
        "task-decorators": [
            {"name": "ray_job", "class-name": "kuberay_provider.decorators.ray_job.ray_job_task"},
        ],
        "integrations": [
            {
                "integration-name": "KubeRay",
                "external-doc-url": "https://docs.ray.io/en/latest/cluster/kubernetes/index.html",
                "tags": ["software"],
            }
        ],
    }
