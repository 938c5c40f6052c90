"""LLM client and the workflow patterns (routing, orchestrator-workers, prompt chaining).

Depends on `storage` only; never imports `bot`.
"""
