"""Lambda handlers: thin adapters from the event to :mod:`imgpipe` calls (see issue 3)."""
