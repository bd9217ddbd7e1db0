"""The `latentdyn` command: parsing and error mapping over the library."""
