"""Tiny PySpark job for the local spark-operator double: count the even numbers of a generated range.

Usage: count_range.py [N] [--fail] — prints ``RESULT even_count=<n>``; ``--fail`` exits 3 after printing.
"""

import sys

from pyspark.sql import SparkSession


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv and argv[0].isdigit() else 1000
    spark = SparkSession.builder.getOrCreate()
    try:
        evens = spark.range(n).filter("id % 2 = 0").count()
        print(f"RESULT even_count={evens} app={spark.sparkContext.appName}", flush=True)
    finally:
        spark.stop()
    if "--fail" in argv:
        print("boom: simulated ETL failure", file=sys.stderr, flush=True)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
