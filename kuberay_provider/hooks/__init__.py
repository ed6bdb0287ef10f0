"""Hooks talking to the Kubernetes API for KubeRay objects."""
