"""One module per `dripcourse` sub-command."""
