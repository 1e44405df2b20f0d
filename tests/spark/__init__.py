"""Tests that start the local SparkSession: the ``spark`` fixture, run_pipeline, imgpipe run."""
