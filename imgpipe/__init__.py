"""imgpipe: an image processing and analysis pipeline that runs locally or on AWS."""

__version__ = "0.1.0"
