"""Recording a forward: ``tracing()``, ``step()`` and what runs while the model runs."""
