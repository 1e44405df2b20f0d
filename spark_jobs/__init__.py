"""PySpark entry points (``process``, ``analyze``): arguments and I/O around pure transforms."""
