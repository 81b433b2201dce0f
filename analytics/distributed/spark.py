"""A Spark session for the workbench's distributed work, and the schema's types in Spark and Arrow.

Local mode (``local[2]``: this machine's two cores) needs only Java and the ``pyspark`` package; a
cluster master URL works the same once the executors have this package and its requirements
installed (the tasks import :mod:`analytics`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pyarrow as pa

from analytics.core import schema

DEFAULT_MASTER = "local[2]"
JAVA_VERSIONS = (17, 21)  # the Java releases Spark 4 supports
REPO_ROOT = Path(__file__).resolve().parents[2]
# pyspark 4.x warns that it "does not yet fully support pandas >= 3"; the grouped-map tasks here
# exchange Arrow tables, not pandas frames, and the results are checked digit for digit in the tests.
PANDAS_WARNING = "PySpark does not yet fully support pandas"

ARROW_TYPES = {
    "VARCHAR": pa.string(), "DOUBLE": pa.float64(), "INTEGER": pa.int32(), "BIGINT": pa.int64(),
    "BOOLEAN": pa.bool_(), "DATE": pa.date32(), "TIMESTAMP": pa.timestamp("us"), "BLOB": pa.binary(),
    "DOUBLE[]": pa.list_(pa.float64()),
}
SPARK_TYPES = {
    "VARCHAR": "STRING", "DOUBLE": "DOUBLE", "INTEGER": "INT", "BIGINT": "BIGINT", "BOOLEAN": "BOOLEAN",
    "DATE": "DATE", "TIMESTAMP": "TIMESTAMP_NTZ", "BLOB": "BINARY", "DOUBLE[]": "ARRAY<DOUBLE>",
}


class SparkUnavailable(RuntimeError):
    """Java or pyspark is missing (the message says how to install them)."""


def check_available() -> None:
    """Raise :class:`SparkUnavailable` when Spark cannot start here."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailable("pyspark is not installed: pip install -r requirements.txt") from None
    java = str(Path(os.environ["JAVA_HOME"]) / "bin" / "java") if os.environ.get("JAVA_HOME") else shutil.which("java")
    if not java or not Path(java).exists():
        raise SparkUnavailable(f"Spark needs Java {' or '.join(map(str, JAVA_VERSIONS))} "
                               "(Debian: apt-get install default-jre-headless)")
    version = java_version(java)
    if version not in JAVA_VERSIONS:
        raise SparkUnavailable(f"{java} is Java {version}; Spark 4 runs on Java {' or '.join(map(str, JAVA_VERSIONS))} "
                               "(Debian: apt-get install openjdk-17-jre-headless, or set JAVA_HOME)")


def java_version(java: str) -> int | None:
    """The major version of the Java runtime at ``java`` (None when it does not say)."""
    output = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major  # "1.8" is Java 8


def blas_threads() -> int:
    """The BLAS threads this process's numpy uses (its matrix products' summation order depends on them)."""
    from threadpoolctl import threadpool_info

    counts = [int(pool["num_threads"]) for pool in threadpool_info() if pool.get("user_api") == "blas"]
    return max(counts) if counts else (os.cpu_count() or 1)


def session(master: str = DEFAULT_MASTER, app_name: str = "cro-analytics"):
    """A Spark session (created, or the running one) with quiet logs and settings for per-study tasks.

    Adaptive coalescing is off: the per-study task inputs are a few bytes each, and coalescing them
    would put every study on one core.
    """
    check_available()
    warnings.filterwarnings("ignore", message=PANDAS_WARNING, category=FutureWarning)
    # Tasks run Python workers of this interpreter, importing analytics from this tree.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(REPO_ROOT) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *paths])
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(master).appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.adaptive.coalescePartitions.enabled", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", os.environ.get("CRO_SPARK_DRIVER_MEMORY", "4g"))
        .config("spark.executorEnv.PYTHONPATH", os.environ["PYTHONPATH"])
        # PySpark gives its Python workers one BLAS thread per task core unless told otherwise; the
        # driver's count keeps matrix products (the CAPA text themes) the local engine's to the last digit.
        .config("spark.executorEnv.OMP_NUM_THREADS", str(blas_threads()))
        .config("spark.executorEnv.OPENBLAS_NUM_THREADS", str(blas_threads()))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def arrow_schema(table: schema.Table, prefix: str = "") -> pa.Schema:
    """``table``'s columns as an Arrow schema (names prefixed with ``prefix``)."""
    return pa.schema([pa.field(prefix + c.name, ARROW_TYPES[c.type]) for c in table.columns])


def spark_ddl(fields: list[tuple[str, str]]) -> str:
    """A Spark DDL schema string for (name, schema type) pairs."""
    return ", ".join(f"`{name}` {SPARK_TYPES[type_]}" for name, type_ in fields)
