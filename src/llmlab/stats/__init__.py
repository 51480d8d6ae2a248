"""Statistics: arena ratings (:mod:`llmlab.stats.arena`)."""
