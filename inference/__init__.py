"""Generation: the generate stage, model clients, server launch commands, chunk merging."""
