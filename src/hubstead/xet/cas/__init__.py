"""The storage half of Xet, at the bottom layer beside ``storage/``: the wire formats (xorbs, shards), the
hashes, the xorb store on disk, the tables that index files and chunks, and reading a stored file back
(``reader``). It knows nothing of repos or users; who may reach what is the ``xet`` package's business (its
service, tokens and routes), one layer above ``repos``."""
