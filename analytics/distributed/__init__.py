"""Beyond one machine: the derived-results refresh on Apache Spark (``refresh.py``), the Overview's
portfolio SQL on Spark SQL (``sql.py``), and the Spark session and type mapping they share
(``spark.py``). The warehouse's Parquet export they read is :mod:`analytics.core.parquet`."""
