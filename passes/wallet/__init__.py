"""Wallet formats and APIs. They know passes, not shops: their input is a CardView."""
