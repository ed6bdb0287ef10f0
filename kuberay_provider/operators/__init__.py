"""Operators for KubeRay. Importing these modules never imports kubernetes, ray or google clients."""
