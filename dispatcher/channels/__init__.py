"""Channel adapters: one module per adapter, registered under its Channel key."""
