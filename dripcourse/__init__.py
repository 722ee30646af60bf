"""dripcourse: the command line and the composition root that wires core, adapters and scheduler."""
