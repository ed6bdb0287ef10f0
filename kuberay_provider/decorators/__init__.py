"""TaskFlow decorators: ``@task.ray_job`` (:mod:`kuberay_provider.decorators.ray_job`)."""
