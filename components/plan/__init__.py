"""Pure decisions: declared targets + observed history -> per-target status and what to submit;
safety rails and quota decisions; shard assignment. No I/O."""
