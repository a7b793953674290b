"""How a program is doing: the console's figures, as tables that can be charted and exported."""
