"""What users call from Python besides tracing: ``trace_image``, command inputs, output files, notebook views."""
