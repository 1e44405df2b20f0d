"""Pure functions: no Spark, no moto, no CDK."""
