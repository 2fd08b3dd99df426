"""Analysis: the check contract, the catalog loader, the engine, and pure helpers the checks share."""
