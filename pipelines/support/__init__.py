"""The support workflow: input guard, routing, orchestrator-workers, knowledge answers,
and `service.SupportService`, which answers one message end to end."""
