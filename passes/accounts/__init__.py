"""Staff accounts: who may use the console and the scanner, and how they sign in."""
