"""The instrumented Swin Transformer: window helpers, small blocks, the model, what pictures capture."""
