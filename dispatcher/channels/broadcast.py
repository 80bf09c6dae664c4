"""The broadcast adapter(s): registered under their Channel key when their credentials are set."""
