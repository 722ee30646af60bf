"""Chat platform adapters: each imports its SDK and the core only."""
