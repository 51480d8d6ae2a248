"""The small, boring core: errors, registry, config parsing, concurrency, run store."""
