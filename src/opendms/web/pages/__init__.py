"""One module per area of the console; each lists its routes as ``ROUTES``."""
