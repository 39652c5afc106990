"""The `epic-ar` command line: thin commands that parse arguments and call the library."""
