"""AWS calls against moto or botocore's Stubber: the ingest Lambda, the label cache, imgpipe aws."""
