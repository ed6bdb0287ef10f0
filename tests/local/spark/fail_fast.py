"""Fails before starting a SparkSession (the driver exits 2 a few seconds after spark-submit starts)."""

import sys

print("starting doomed job", flush=True)
print("boom: input table missing", file=sys.stderr, flush=True)
sys.exit(2)
