"""Large files: pointers and the rules that send a file to LFS (``pointers``), the LFS batch and transfer API
(``uploads``), who may reference a stored object (``proofs``), reading an object from either store
(``objects``), and listing or deleting a repo's LFS files (``files``)."""
