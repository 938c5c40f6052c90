"""Support-team triage: one card per ticket (`cards`), its buttons and the handoff
(`feature`), escalation notices (`notice`), who is an agent (`agents`), the trace modal
(`trace_views`) and the cards' Block Kit (`views`)."""
