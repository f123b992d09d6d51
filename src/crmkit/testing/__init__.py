"""Tools for testing code that uses crmkit: the store contract, hypothesis strategies
and pytest fixtures (``crmkit_store``, ``crmkit_clock``)."""
