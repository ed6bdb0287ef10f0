"""BigQuery I/O for Ray and Spark jobs.

Importing this package is cheap: it never imports google.cloud, ray or pyspark.
The heavy modules are imported by the jobs that use them:

- ``kuberay_provider.bigquery.names`` — the one set of table-name rules (``[project.]dataset.table``), used by
  the jobs, the BigQuery I/O and the Airflow side (asset URIs, lineage, the pipeline builder); standard library only.
- :mod:`kuberay_provider.bigquery.config` — :class:`BigQueryConfig` (picklable connection settings).
- :mod:`kuberay_provider.bigquery.clients` — the one way to build REST / Storage Read / Storage Write clients.
- :mod:`kuberay_provider.bigquery.storage` — Storage Read/Write API plumbing shared by Ray and Spark.
- :mod:`kuberay_provider.bigquery.ray_io` — ``read_bigquery`` / ``write_bigquery`` for Ray Data.
- :mod:`kuberay_provider.bigquery.spark_source` — the ``bigquery`` Spark Python Data Source.
"""

from __future__ import annotations

from kuberay_provider.bigquery.config import BigQueryConfig
from kuberay_provider.bigquery.errors import BigQueryIOError

__all__ = ["BigQueryConfig", "BigQueryIOError"]
