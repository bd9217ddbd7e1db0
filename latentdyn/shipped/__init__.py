"""The scene and experiment definitions shipped with latentdyn (the repository's scenes/ and experiments/)."""
