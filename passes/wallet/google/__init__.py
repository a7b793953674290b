"""Google Wallet: loyalty class and object bodies, the "Save to Google Wallet" JWT and the REST
client. Like ``apple``, it knows passes, not shops: its input is a CardView."""
