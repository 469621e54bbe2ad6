"""Other samplers measured side by side with ours, one module per peer."""
