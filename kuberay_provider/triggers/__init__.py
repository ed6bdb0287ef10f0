"""Triggers that wait for KubeRay objects in the triggerer without holding a worker slot."""
