"""dripcourse test suite."""
