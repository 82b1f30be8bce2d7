"""One shard's dynamic resource, cloud side and engine-free: its inputs, its outputs, the audit
record built from them, and how it converges (read history, plan, submit, wait)."""
