"""Customer messages: the intake (listeners -> durable job), the assistant panel, and the
`slack_message` job that answers one message in its thread, exactly once."""
